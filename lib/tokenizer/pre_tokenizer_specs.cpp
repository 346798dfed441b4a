// The pre-tokenizer table: each tokenizer.ggml.pre name with its regex list and flags.
#include "lib/tokenizer/pre_tokenizer.hpp"

namespace slm::tokenizer {

// ---------------------------------------------------------------------------------------------
// The regex lists are llama.cpp's (src/llama-vocab.cpp, llm_tokenizer_bpe), which adapt each
// model's tokenizer.json "Split" pre-tokenizers:
// - the case-insensitive contractions (?i:'s|'t|...) are spelled out as '[sS]|'[tT]..., which
//   also keeps PCRE2 from folding 's' to U+017F;
// - the GPT-2 pattern lacks the final "|\s+" of the original; the text between matches is kept
//   as pieces anyway (see PreTokenizer::split), which gives the same words;
// - non-ASCII characters are written as \x{...} escapes so that no editor or copy can
//   normalize them (NFC would turn U+212A KELVIN SIGN into 'K' and break a range).
// PCRE2 runs them in UTF + UCP mode; llama.cpp runs some through hand-written splitters and the
// rest through std::regex over category-collapsed text, which agree with these regexes.
// ---------------------------------------------------------------------------------------------
namespace {

constexpr std::string_view kGpt2Pattern =
    R"re('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))re";

constexpr std::string_view kLlama3Pattern =
    R"re((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";

// Qwen2 differs from Llama 3 only in splitting numbers into single digits.
constexpr std::string_view kQwen2Pattern =
    R"re((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";

// DeepSeek's "letters": the Latin, Greek, Cyrillic, ... cased-letter ranges of its tokenizer.json.
constexpr std::string_view kDeepseekLetters =
    R"re(\s?[A-Za-z\x{B5}\x{C0}-\x{D6}\x{D8}-\x{F6}\x{F8}-\x{1BA}\x{1BC}-\x{1BF}\x{1C4}-\x{293}\x{295}-\x{2AF}\x{370}-\x{373}\x{376}\x{377}\x{37B}-\x{37D}\x{37F}\x{386}\x{388}-\x{38A}\x{38C}\x{38E}-\x{3A1}\x{3A3}-\x{3F5}\x{3F7}-\x{481}\x{48A}-\x{52F}\x{531}-\x{556}\x{10A0}-\x{10C5}\x{13A0}-\x{13F5}\x{13F8}-\x{13FD}\x{1C90}-\x{1CBA}\x{1CBD}-\x{1CBF}\x{1D00}-\x{1D2B}\x{1D6B}-\x{1D77}\x{1D79}-\x{1D9A}\x{1E00}-\x{1F15}\x{1F18}-\x{1F1D}\x{1F20}-\x{1F45}\x{1F48}-\x{1F4D}\x{1F50}-\x{1F57}\x{1F59}\x{1F5B}\x{1F5D}\x{1F5F}-\x{1F7D}\x{1F80}-\x{1FB4}\x{1FB6}-\x{1FBC}\x{1FBE}\x{1FC2}-\x{1FC4}\x{1FC6}-\x{1FCC}\x{1FD0}-\x{1FD3}\x{1FD6}-\x{1FDB}\x{1FE0}-\x{1FEC}\x{1FF2}-\x{1FF4}\x{1FF6}-\x{1FFC}\x{2102}\x{2107}\x{210A}-\x{2113}\x{2115}\x{2119}-\x{211D}\x{2124}\x{2126}\x{2128}\x{212A}-\x{212D}\x{212F}-\x{2134}\x{2139}\x{213C}-\x{213F}\x{2145}-\x{2149}\x{214E}\x{2183}\x{2184}\x{2C00}-\x{2C7B}\x{2C7E}-\x{2CE4}\x{2CEB}-\x{2CEE}\x{2CF2}\x{2CF3}\x{A640}-\x{A66D}\x{A680}-\x{A69B}\x{A722}-\x{A76F}\x{A771}-\x{A787}\x{A78B}-\x{A78E}\x{AB70}-\x{ABBF}\x{FB00}-\x{FB06}\x{FB13}-\x{FB17}\x{FF21}-\x{FF3A}\x{FF41}-\x{FF5A}\x{10400}-\x{1044F}\x{104B0}-\x{104D3}\x{104D8}-\x{104FB}\x{10C80}-\x{10CB2}\x{10CC0}-\x{10CF2}\x{118A0}-\x{118DF}\x{1E900}-\x{1E943}]+)re";
constexpr std::string_view kDeepseekCjk = R"re([\x{4E00}-\x{9FA5}\x{800}-\x{4E00}\x{AC00}-\x{D7FF}]+)re";

constexpr std::string_view kPoroPattern = R"re( ?[^(\s|.,!?\x{2026}\x{3002}\x{FF0C}\x{3001}\x{964}\x{6D4}\x{60C})]+)re";

// Each pre-tokenizer's list, in llama.cpp's order.
constexpr std::string_view kDefaultPatterns[] = {R"re([\p{P}\$\+<=>\^~\|]+)re", kGpt2Pattern, R"re(\p{N}+)re",
                                                 "[0-9][0-9][0-9]"};
constexpr std::string_view kGpt2Patterns[] = {kGpt2Pattern};
constexpr std::string_view kLlama3Patterns[] = {kLlama3Pattern};
constexpr std::string_view kQwen2Patterns[] = {kQwen2Pattern};
constexpr std::string_view kDeepseekLlmPatterns[] = {
    R"re([\r\n])re", kDeepseekLetters, R"re(\s?[!-/:-~\x{FF01}-\x{FF0F}\x{FF1A}-\x{FF5E}\x{2018}-\x{201F}\x{3000}-\x{3002}]+)re", R"re(\s+$)re", kDeepseekCjk, R"re(\p{N}+)re"};
constexpr std::string_view kDeepseekCoderPatterns[] = {R"re([\r\n])re", R"re(\s?\p{L}+)re", R"re(\s?\p{P}+)re",
                                                       kDeepseekCjk, R"re(\p{N})re"};
constexpr std::string_view kDeepseekV3Patterns[] = {
    R"re(\p{N}{1,3})re", R"re([\x{4E00}-\x{9FA5}\x{3040}-\x{309F}\x{30A0}-\x{30FF}]+)re",
    R"re([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"};
constexpr std::string_view kFalconPatterns[] = {R"re([\p{P}\$\+<=>\^~\|`]+)re", kGpt2Pattern, "[0-9][0-9][0-9]"};
constexpr std::string_view kStarcoderPatterns[] = {R"re(\p{N})re", kGpt2Pattern};
constexpr std::string_view kPoroPatterns[] = {kPoroPattern};
constexpr std::string_view kVikingPatterns[] = {kPoroPattern, R"re(\p{N})re"};
constexpr std::string_view kTekkenPatterns[] = {
    R"re([^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"};

// tokenizer.ggml.pre -> regexes and flags, as llama.cpp's llama_vocab::impl::load sets them.
//                        name              patterns                ignore_merges clean_spaces add_bos
constexpr PreTokenizerSpec kSpecs[] = {
    {"default",        kDefaultPatterns,       false, true,  false},
    {"llama3",         kLlama3Patterns,        true,  true,  true},
    {"llama-v3",       kLlama3Patterns,        true,  true,  true},
    {"llama-bpe",      kLlama3Patterns,        true,  true,  true},
    {"falcon3",        kLlama3Patterns,        true,  true,  true},
    {"dbrx",           kLlama3Patterns,        false, true,  false},
    {"smaug-bpe",      kLlama3Patterns,        false, true,  false},
    {"deepseek-llm",   kDeepseekLlmPatterns,   false, false, false},
    {"deepseek-coder", kDeepseekCoderPatterns, false, false, false},
    {"deepseek-v3",    kDeepseekV3Patterns,    false, false, false},
    {"falcon",         kFalconPatterns,        false, true,  false},
    {"mpt",            kGpt2Patterns,          false, true,  false},
    {"olmo",           kGpt2Patterns,          false, true,  false},
    {"jais",           kGpt2Patterns,          false, true,  false},
    {"gpt-2",          kGpt2Patterns,          false, true,  false},
    {"phi-2",          kGpt2Patterns,          false, true,  false},
    {"jina-es",        kGpt2Patterns,          false, true,  false},
    {"jina-de",        kGpt2Patterns,          false, true,  false},
    {"gigachat",       kGpt2Patterns,          false, true,  false},
    {"jina-v1-en",     kGpt2Patterns,          false, true,  false},
    {"jina-v2-es",     kGpt2Patterns,          false, true,  false},
    {"jina-v2-de",     kGpt2Patterns,          false, true,  false},
    {"jina-v2-code",   kGpt2Patterns,          false, true,  false},
    {"roberta-bpe",    kGpt2Patterns,          false, true,  false},
    {"starcoder",      kStarcoderPatterns,     false, true,  false},
    {"refact",         kStarcoderPatterns,     false, true,  false},
    {"command-r",      kStarcoderPatterns,     false, false, false},
    {"smollm",         kStarcoderPatterns,     false, false, false},
    {"codeshell",      kStarcoderPatterns,     false, true,  false},
    {"exaone",         kStarcoderPatterns,     false, true,  false},
    {"minerva-7b",     kStarcoderPatterns,     false, true,  false},
    {"qwen2",          kQwen2Patterns,         false, false, false},
    {"stablelm2",      kQwen2Patterns,         false, true,  false},
    {"megrez",         kQwen2Patterns,         false, true,  false},
    {"poro-chat",      kPoroPatterns,          false, false, false},
    {"bloom",          kPoroPatterns,          false, true,  false},
    {"gpt3-finnish",   kPoroPatterns,          false, true,  false},
    {"viking",         kVikingPatterns,        false, false, false},
    {"tekken",         kTekkenPatterns,        true,  false, true},
};

}  // namespace

const PreTokenizerSpec* find_pre_tokenizer_spec(std::string_view pre_name) {
  if (pre_name.empty()) pre_name = "default";
  for (const auto& spec : kSpecs) {
    if (spec.pre_name == pre_name) return &spec;
  }
  return nullptr;
}

}  // namespace slm::tokenizer
