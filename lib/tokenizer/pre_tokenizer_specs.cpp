// The pre-tokenizer table: each tokenizer.ggml.pre name with its regex list and flags.
#include "lib/tokenizer/pre_tokenizer.hpp"

namespace slm::tokenizer {

// ---------------------------------------------------------------------------------------------
// The regex lists are llama.cpp's (src/llama-vocab.cpp, llm_tokenizer_bpe, in a snapshot that
// knows qwen35), which adapt each model's tokenizer.json "Split" pre-tokenizers:
// - the case-insensitive contractions (?i:'s|'t|...) are spelled out as '[sS]|'[tT]..., which
//   also keeps PCRE2 from folding 's' to U+017F;
// - the GPT-2 pattern lacks the final "|\s+" of the original; the text between matches is kept
//   as pieces anyway (see PreTokenizer::split), which gives the same words;
// - non-ASCII characters are written as \x{...} escapes so that no editor or copy can
//   normalize them (NFC would turn U+212A KELVIN SIGN into 'K' and break a range).
// They are written here as llama.cpp writes them; translate_llama_regex (llama_regex.hpp) gives
// them, in PCRE2, the meaning llama.cpp's std::regex over category-collapsed text gives them.
// Where llama.cpp splits with hand-written code instead (GPT-2, Llama 3, Kimi-K2, AFMoE's
// digits), the regex here is one that splits the same way.
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

// Qwen3.5: Qwen2's, with combining marks (\p{M}) joined to the letters they follow.
constexpr std::string_view kQwen35Pattern =
    R"re((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";

// GPT-4o (o200k): a cased word (upper run then lower run, or upper run) with its contraction,
// digits by three. llama.cpp spells "an uppercase letter" as a letter other than a-z
// ((?=[\p{L}])[^a-z]), so every non-ASCII letter counts as both cases.
constexpr std::string_view kGpt4oPattern =
    R"re([^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";
// GPT-4o's, with combining marks counted as letters.
constexpr std::string_view kGraniteEmbedMultiPattern =
    R"re([^\r\n\p{L}\p{N}]?((?=[\p{L}\p{M}])([^a-z]))*((?=[\p{L}\p{M}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\r\n\p{L}\p{N}]?((?=[\p{L}\p{M}])([^a-z]))+((?=[\p{L}\p{M}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";

// The tokenizer.json form of GPT-4o's cased words, with \p{Lu} \p{Ll} ...; llama.cpp reads each
// of those as any letter, so case does not split a word there.
constexpr std::string_view kTinyAyaPattern =
    R"re([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";
// The same with single digits.
constexpr std::string_view kYoutuPattern =
    R"re([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";

// CJK ideographs and kana, as DeepSeek-V3 groups them.
constexpr std::string_view kCjkKanaRuns = R"re([\x{4E00}-\x{9FA5}\x{3040}-\x{309F}\x{30A0}-\x{30FF}]+)re";

// DeepSeek-V3's words: ASCII punctuation joins a following ASCII word; \p{M} joins letters.
constexpr std::string_view kDeepseekV3Words =
    R"re([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";

// Kimi-K2 (tokenization_kimi.py): Han runs apart from other letters. llama.cpp splits it with
// hand-written code (unicode_regex_split_custom_kimi_k2) whose Han is the CJK ideograph blocks
// below, not the Unicode script, and whose other words are any letters, case ignored; this is
// the regex that code implements.
constexpr std::string_view kKimiK2Pattern =
    R"re([\x{4E00}-\x{9FFF}\x{3400}-\x{4DBF}\x{20000}-\x{2A6DF}\x{2A700}-\x{2B73F}\x{2B740}-\x{2B81F}\x{2B820}-\x{2CEAF}\x{2CEB0}-\x{2EBEF}\x{F900}-\x{FAFF}\x{2F800}-\x{2FA1F}]+|[^\r\n\p{L}\p{N}]?(?:(?![\x{4E00}-\x{9FFF}\x{3400}-\x{4DBF}\x{20000}-\x{2A6DF}\x{2A700}-\x{2B73F}\x{2B740}-\x{2B81F}\x{2B820}-\x{2CEAF}\x{2CEB0}-\x{2EBEF}\x{F900}-\x{FAFF}\x{2F800}-\x{2FA1F}])\p{L})+(?:'[sS]|'[tT]|'[mM]|'[dD]|'[rR][eE]|'[vV][eE]|'[lL][lL])?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";

// AFMoE's digit runs, split by llama.cpp's hand-written unicode_regex_split_custom_afmoe: the
// first group takes (length mod 3) digits, or 3, then groups of 3. That code also joins the
// text before a run to the run's first group ("ab 1234" -> "ab 1", "234"), and the later
// regexes split it again; \G anchors each match where the last one ended, as the code walks.
constexpr std::string_view kAfmoeDigitGroups = R"re(\G[^\p{N}]*+\p{N}{1,3}(?=(?:\p{N}{3})*(?!\p{N})))re";
// AFMoE's CJK and Southeast Asian scripts. U+F900 (a compatibility ideograph, which NFC would
// turn into U+8C48) starts the third range.
constexpr std::string_view kAfmoeAsianRuns =
    R"re([\x{4E00}-\x{9FFF}\x{3400}-\x{4DBF}\x{F900}-\x{FAFF}\x{3040}-\x{309F}\x{30A0}-\x{30FF}\x{FF65}-\x{FF9F}\x{2F00}-\x{2FDF}\x{E40}-\x{E7F}\x{E80}-\x{EFF}\x{1780}-\x{17FF}\x{1000}-\x{109F}\x{AA60}-\x{AA7F}\x{A9E0}-\x{A9FF}\x{AC00}-\x{D7AF}\x{1100}-\x{11FF}]+)re";

constexpr std::string_view kNewlineRuns = R"re([^\n]+|[\n]+)re";

// Each pre-tokenizer's list, in llama.cpp's order.
constexpr std::string_view kDefaultPatterns[] = {R"re([\p{P}\$\+<=>\^~\|]+)re", kGpt2Pattern, R"re(\p{N}+)re",
                                                 "[0-9][0-9][0-9]"};
constexpr std::string_view kGpt2Patterns[] = {kGpt2Pattern};
constexpr std::string_view kLlama3Patterns[] = {kLlama3Pattern};
constexpr std::string_view kJais2Patterns[] = {
    R"re((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s{512}(?!\S)|\s{256}(?!\S)|\s{128}(?!\S)|\s{64}(?!\S)|\s{32}(?!\S)|\s{16}(?!\S)|\s{8}(?!\S)|\s{4}(?!\S)|\s{1,2}(?!\S)|\s{1})re"};
constexpr std::string_view kQwen2Patterns[] = {kQwen2Pattern};
constexpr std::string_view kQwen35Patterns[] = {kQwen35Pattern};
constexpr std::string_view kDeepseekLlmPatterns[] = {
    R"re([\r\n])re", kDeepseekLetters, R"re(\s?[!-/:-~\x{FF01}-\x{FF0F}\x{FF1A}-\x{FF5E}\x{2018}-\x{201F}\x{3000}-\x{3002}]+)re", R"re(\s+$)re", kDeepseekCjk, R"re(\p{N}+)re"};
constexpr std::string_view kDeepseekCoderPatterns[] = {R"re([\r\n])re", R"re(\s?\p{L}+)re", R"re(\s?\p{P}+)re",
                                                       kDeepseekCjk, R"re(\p{N})re"};
constexpr std::string_view kDeepseekV3Patterns[] = {R"re(\p{N}{1,3})re", kCjkKanaRuns, kDeepseekV3Words};
constexpr std::string_view kSpark25Patterns[] = {
    R"re(\p{N}{1,3})re", kCjkKanaRuns,
    R"re([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+|[\r\n]|\s+(?!\S)|\s+)re",
    R"re(\p{N})re"};
constexpr std::string_view kYoutuPatterns[] = {
    R"re([\x{AC00}-\x{D7A3}\x{3131}-\x{318E}]+|[\x{FF01}\x{2026}\x{201C}\x{201D}\x{2018}\x{2019}\x{2014}\x{FF1A}\x{FF1B}\x{FF0C}\x{3001}-\x{303F}\x{FE30}-\x{FE4F}]+|[\x{3105}-\x{312F}]+|[\x{4E00}-\x{9FA5}\x{3040}-\x{309F}\x{30A0}-\x{30FF}]+)re",
    kYoutuPattern};
constexpr std::string_view kFalconPatterns[] = {R"re([\p{P}\$\+<=>\^~\|`]+)re", kGpt2Pattern, "[0-9][0-9][0-9]"};
constexpr std::string_view kStarcoderPatterns[] = {R"re(\p{N})re", kGpt2Pattern};
constexpr std::string_view kPoroPatterns[] = {kPoroPattern};
constexpr std::string_view kVikingPatterns[] = {kPoroPattern, R"re(\p{N})re"};
constexpr std::string_view kTekkenPatterns[] = {
    R"re([^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"};
// Chameleon's image and sentinel tokens are split out before the words.
constexpr std::string_view kChameleonPatterns[] = {
    "<sentinel:[0-9]+>", "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z", R"re(([\t\n]|    |  ))re", R"re(\p{N})re",
    R"re([\p{P}!-/:-@\[-`{-~])re", kGpt2Pattern};
constexpr std::string_view kGpt4oPatterns[] = {kGpt4oPattern};
constexpr std::string_view kGraniteEmbedMultiPatterns[] = {kGraniteEmbedMultiPattern};
constexpr std::string_view kTinyAyaPatterns[] = {R"re(\d{1,3}(?=(?:\d{3})*\b))re", kTinyAyaPattern};
constexpr std::string_view kKimiK2Patterns[] = {kKimiK2Pattern};
// Digit runs, then a split before every group of three digits that ends the run.
constexpr std::string_view kSuperBpePatterns[] = {R"re(\p{N}+)re", R"re((?=(\d{3})+(?!\d)))re"};
constexpr std::string_view kBailingMoePatterns[] = {
    R"re('(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+)re"};
constexpr std::string_view kSeedCoderPatterns[] = {
    R"re((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+)re"};
// Qwen2's without the contractions, so that Turkish suffixes after an apostrophe stay attached.
constexpr std::string_view kUfakzekaPatterns[] = {
    R"re([^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"};
constexpr std::string_view kAfmoePatterns[] = {kAfmoeDigitGroups, kAfmoeAsianRuns, kDeepseekV3Words};
constexpr std::string_view kLagunaPatterns[] = {kNewlineRuns, kQwen2Pattern};
constexpr std::string_view kExaoneMoePatterns[] = {
    R"re((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?(?:\p{L}\p{M}*(?: \p{L}\p{M}*)*)+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]?|\s*[\r\n]|\s+(?!\S)|\s+)re"};
// Gemma 4 and Sarvam merge SentencePiece-style text ('▁' for ' ') whole, line by line.
constexpr std::string_view kNewlineRunsPatterns[] = {kNewlineRuns};
constexpr std::string_view kMiniCpm5Patterns[] = {
    R"re(\p{N}{1,3})re",
    R"re((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}+| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"};
constexpr std::string_view kWhitespacePatterns[] = {R"re(\S+)re"};

// What llama.cpp's load() sets besides the regexes; the defaults are BPE's (merges used,
// spaces cleaned on detokenize, no BOS, byte-level).
enum PreTokenizerFlag : unsigned {
  kIgnoreMerges = 1u << 0,
  kKeepSpaces = 1u << 1,  // clean_spaces = false
  kAddBos = 1u << 2,
  kAlwaysAddBos = 1u << 3,
  kRawUtf8 = 1u << 4,  // not byte-level
  kEscapeSpaces = 1u << 5,
  kNewlineRunsWhole = 1u << 6,
};

constexpr PreTokenizerSpec spec(std::string_view name, std::span<const std::string_view> patterns, unsigned flags = 0) {
  PreTokenizerSpec result;
  result.pre_name = name;
  result.patterns = patterns;
  result.ignore_merges = (flags & kIgnoreMerges) != 0;
  result.clean_spaces = (flags & kKeepSpaces) == 0;
  result.add_bos = (flags & (kAddBos | kAlwaysAddBos)) != 0;
  result.always_add_bos = (flags & kAlwaysAddBos) != 0;
  result.byte_level = (flags & kRawUtf8) == 0;
  result.escape_spaces = (flags & kEscapeSpaces) != 0;
  result.newline_runs_whole = (flags & kNewlineRunsWhole) != 0;
  return result;
}

constexpr unsigned kLlama3Flags = kIgnoreMerges | kAddBos;
constexpr unsigned kGemma4Flags = kRawUtf8 | kEscapeSpaces | kNewlineRunsWhole | kAlwaysAddBos;

// tokenizer.ggml.pre -> regexes and flags, as llama.cpp's llama_vocab::impl::load sets them.
constexpr PreTokenizerSpec kSpecs[] = {
    spec("default", kDefaultPatterns),
    spec("minicpm5", kMiniCpm5Patterns, kIgnoreMerges),
    spec("llama3", kLlama3Patterns, kLlama3Flags),
    spec("llama-v3", kLlama3Patterns, kLlama3Flags),
    spec("llama-bpe", kLlama3Patterns, kLlama3Flags),
    spec("falcon3", kLlama3Patterns, kLlama3Flags),
    spec("falcon-h1", kLlama3Patterns, kLlama3Flags),
    spec("pixtral", kLlama3Patterns, kLlama3Flags),
    spec("midm-2.0", kLlama3Patterns, kLlama3Flags),
    spec("lfm2", kLlama3Patterns, kLlama3Flags),
    spec("jina-v5-nano", kLlama3Patterns, kLlama3Flags),
    spec("deepseek-llm", kDeepseekLlmPatterns, kKeepSpaces),
    spec("deepseek-coder", kDeepseekCoderPatterns, kKeepSpaces),
    spec("deepseek-v3", kDeepseekV3Patterns, kKeepSpaces),
    spec("spark2_5", kSpark25Patterns, kKeepSpaces),
    spec("youtu", kYoutuPatterns, kKeepSpaces | kIgnoreMerges),
    spec("falcon", kFalconPatterns),
    spec("mpt", kGpt2Patterns),
    spec("starcoder", kStarcoderPatterns),
    spec("gpt-2", kGpt2Patterns),
    spec("phi-2", kGpt2Patterns),
    spec("jina-es", kGpt2Patterns),
    spec("jina-de", kGpt2Patterns),
    spec("gigachat", kGpt2Patterns),
    spec("jina-v2-es", kGpt2Patterns),
    spec("jina-v2-de", kGpt2Patterns),
    spec("a.x-4.0", kGpt2Patterns),
    spec("mellum", kGpt2Patterns),
    spec("modern-bert", kGpt2Patterns),
    spec("jais-2", kJais2Patterns),
    spec("gemma4", kNewlineRunsPatterns, kGemma4Flags),
    spec("granite-embed-multi-311m", kNewlineRunsPatterns, kGemma4Flags),
    spec("sarvam-moe", kNewlineRunsPatterns, kRawUtf8 | kEscapeSpaces | kKeepSpaces),
    // These three also add a separator token, for embeddings; slm has no such token.
    spec("jina-v1-en", kGpt2Patterns),
    spec("jina-v2-code", kGpt2Patterns),
    spec("roberta-bpe", kGpt2Patterns),
    spec("whitespace", kWhitespacePatterns, kRawUtf8),
    spec("refact", kStarcoderPatterns),
    spec("command-r", kStarcoderPatterns, kKeepSpaces),
    spec("qwen2", kQwen2Patterns, kKeepSpaces),
    spec("deepseek-r1-qwen", kQwen2Patterns, kKeepSpaces),
    spec("kormo", kQwen2Patterns, kKeepSpaces),
    spec("f2llmv2", kQwen2Patterns, kKeepSpaces),
    spec("qwen35", kQwen35Patterns, kKeepSpaces),
    spec("stablelm2", kQwen2Patterns),
    spec("olmo", kGpt2Patterns),
    spec("dbrx", kLlama3Patterns),
    spec("smaug-bpe", kLlama3Patterns),
    spec("poro-chat", kPoroPatterns, kKeepSpaces),
    spec("glm4", kLlama3Patterns),
    spec("chatglm-bpe", kLlama3Patterns),
    spec("viking", kVikingPatterns, kKeepSpaces),
    spec("jais", kGpt2Patterns),
    spec("tekken", kTekkenPatterns, kKeepSpaces | kIgnoreMerges | kAddBos),
    spec("smollm", kStarcoderPatterns, kKeepSpaces),
    spec("codeshell", kStarcoderPatterns),
    spec("bloom", kPoroPatterns),
    spec("gpt3-finnish", kPoroPatterns),
    spec("exaone", kStarcoderPatterns),
    spec("exaone4", kGpt2Patterns),
    spec("exaone-moe", kExaoneMoePatterns),
    spec("chameleon", kChameleonPatterns, kAddBos | kKeepSpaces),
    spec("minerva-7b", kStarcoderPatterns),
    spec("megrez", kQwen2Patterns),
    spec("gpt-4o", kGpt4oPatterns, kKeepSpaces),
    spec("llama4", kGpt4oPatterns, kKeepSpaces),
    spec("kanana2", kGpt4oPatterns, kKeepSpaces),
    spec("talkie", kGpt4oPatterns, kKeepSpaces),
    spec("granite-embed-multi-97m", kGraniteEmbedMultiPatterns, kKeepSpaces | kIgnoreMerges),
    spec("tiny_aya", kTinyAyaPatterns, kKeepSpaces),
    spec("cohere2moe", kTinyAyaPatterns, kKeepSpaces),
    spec("superbpe", kSuperBpePatterns, kKeepSpaces),
    spec("trillion", kGpt2Patterns, kKeepSpaces),
    spec("granite-docling", kGpt2Patterns, kKeepSpaces),
    spec("bailingmoe", kBailingMoePatterns, kKeepSpaces),
    spec("bailingmoe2", kBailingMoePatterns, kKeepSpaces),
    spec("llada-moe", kBailingMoePatterns, kKeepSpaces),
    spec("seed-coder", kSeedCoderPatterns, kKeepSpaces),
    spec("hunyuan", kQwen2Patterns, kKeepSpaces),
    spec("hunyuan-dense", kDeepseekV3Patterns, kKeepSpaces),
    spec("hy_v4", kDeepseekV3Patterns, kKeepSpaces),
    spec("joyai-llm", kDeepseekV3Patterns, kKeepSpaces),
    spec("kimi-k2", kKimiK2Patterns, kKeepSpaces),
    spec("ufakzeka", kUfakzekaPatterns, kKeepSpaces),
    spec("grok-2", kQwen2Patterns, kKeepSpaces),
    spec("afmoe", kAfmoePatterns, kKeepSpaces),
    spec("laguna", kLagunaPatterns, kKeepSpaces),
    spec("minimax-m2", kGpt4oPatterns, kKeepSpaces),
    spec("solar-open", kQwen2Patterns, kKeepSpaces),
    spec("mellum2", kStarcoderPatterns),
};

}  // namespace

const PreTokenizerSpec* find_pre_tokenizer_spec(std::string_view pre_name) {
  if (pre_name.empty()) pre_name = "default";
  for (const auto& spec : kSpecs) {
    if (spec.pre_name == pre_name) return &spec;
  }
  return nullptr;
}

std::span<const PreTokenizerSpec> all_pre_tokenizer_specs() { return kSpecs; }

}  // namespace slm::tokenizer
