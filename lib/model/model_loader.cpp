// Model::load: read the hyperparameters, check them for sanity, and bind every
// tensor the architecture needs, checking its shape and type. A file that passes
// here cannot make the forward pass read out of bounds.
#include <fmt/format.h>
#include <omp.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <future>
#include <set>
#include <span>

#include "kernels/dequantize.hpp"
#include "lib/model/arch.hpp"
#include "lib/model/model_binding.hpp"
#include "lib/model/tile_cache.hpp"
#include "lib/model/weight_binder.hpp"
#include "lib/model/weights.hpp"
#include "slm/model.hpp"

namespace slm {

namespace {

// attention.head_count_kv: one count for every layer, or (hybrid models) an array of one per
// layer where 0 marks a recurrent layer (c.recurrent_layers); the attention layers must agree.
int32_t read_kv_heads(const GgufFile& file, const std::string& key, ModelConfig& c) {
  const GgufValue* value = file.find(key);
  if (!value || value->type != GgufValueType::ARRAY) return checked_hparam(file, key, 1, c.n_head, c.n_head);
  const GgufArray* per_layer = &file.get_array(key);
  if (per_layer->ints.size() != size_t(c.n_layer))
    throw Error(fmt::format("{}: {} has {} values, expected one integer per layer ({})", file.path(), key,
                            per_layer->size(), c.n_layer));
  int32_t n_head_kv = 0;
  c.recurrent_layers.assign(size_t(c.n_layer), false);
  for (int32_t layer = 0; layer < c.n_layer; ++layer) {
    const int64_t v = per_layer->ints[size_t(layer)];
    if (v < 0 || v > c.n_head)
      throw Error(fmt::format("{}: {}[{}] is {}, expected a value in [0, {}]", file.path(), key, layer, v, c.n_head));
    if (v == 0) {
      c.recurrent_layers[size_t(layer)] = true;
      continue;
    }
    if (n_head_kv != 0 && v != n_head_kv)
      throw Error(fmt::format("{}: {}[{}] is {}, but an earlier attention layer has {} (slm needs one count)",
                              file.path(), key, layer, v, n_head_kv));
    n_head_kv = int32_t(v);
  }
  return n_head_kv > 0 ? n_head_kv : c.n_head;  // no attention layer: the scratch sizes still want one
}

ModelConfig read_config(const GgufFile& file, const ArchSpec& spec) {
  const std::string p = std::string(spec.name) + ".";
  ModelConfig c;
  c.arch = spec.name;
  const std::string* name = file.get_string_opt("general.name");
  c.name = name ? *name : std::filesystem::path(file.path()).filename().string();
  c.n_embd = checked_hparam(file, p + "embedding_length", 1, kMaxEmbd);
  c.n_layer = checked_hparam(file, p + "block_count", 1, kMaxLayers);
  c.n_ff = checked_hparam(file, p + "feed_forward_length", 1, kMaxFeedForward);
  c.n_head = checked_hparam(file, p + "attention.head_count", 1, kMaxHeads);
  c.n_head_kv = read_kv_heads(file, p + "attention.head_count_kv", c);
  if (c.n_head % c.n_head_kv != 0)
    throw Error(fmt::format("{}: {}attention.head_count ({}) is not a multiple of head_count_kv ({})", file.path(), p,
                            c.n_head, c.n_head_kv));
  if (!file.has(p + "attention.key_length") && c.n_embd % c.n_head != 0)
    throw Error(fmt::format("{}: {}embedding_length ({}) is not a multiple of attention.head_count ({})", file.path(),
                            p, c.n_embd, c.n_head));
  c.head_dim = checked_hparam(file, p + "attention.key_length", 2, kMaxHeadDim, c.n_embd / c.n_head);
  const int32_t value_length = checked_hparam(file, p + "attention.value_length", 1, kMaxHeadDim, c.head_dim);
  if (value_length != c.head_dim)
    throw Error(fmt::format("{}: {}attention.value_length ({}) differs from key_length ({}), which slm does not support",
                            file.path(), p, value_length, c.head_dim));
  c.n_rot = checked_hparam(file, p + "rope.dimension_count", 2, c.head_dim, c.head_dim);
  if (c.n_rot % 2 != 0) throw Error(fmt::format("{}: {}rope.dimension_count ({}) must be even", file.path(), p, c.n_rot));
  c.n_ctx_train = checked_hparam(file, p + "context_length", 1, kMaxContext);

  const float eps = file.get_f32(p + "attention.layer_norm_rms_epsilon");
  if (!(eps > 0.0f && eps < 1.0f))
    throw Error(fmt::format("{}: {}attention.layer_norm_rms_epsilon is {}, expected a value in (0, 1)", file.path(), p, eps));
  c.rms_norm_eps = eps;
  c.rope_freq_base = file.get_f32_opt(p + "rope.freq_base").value_or(10000.0f);
  if (!(c.rope_freq_base > 1.0f && c.rope_freq_base < 1e12f))
    throw Error(fmt::format("{}: {}rope.freq_base is {}, expected a value in (1, 1e12)", file.path(), p, c.rope_freq_base));
  if (const std::string* scaling = file.get_string_opt(p + "rope.scaling.type"); scaling && *scaling != "none") {
    if (*scaling != "linear")
      throw Error(fmt::format("{}: {}rope.scaling.type '{}' is not supported (only none and linear)", file.path(), p, *scaling));
    const float factor = file.get_f32_opt(p + "rope.scaling.factor").value_or(1.0f);
    if (!(factor >= 1.0f && factor <= 1024.0f))
      throw Error(fmt::format("{}: {}rope.scaling.factor is {}, expected a value in [1, 1024]", file.path(), p, factor));
    c.rope_freq_scale = 1.0f / factor;
  }
  // LongRoPE's (phi3), read for every architecture as llama.cpp does.
  c.n_ctx_orig = checked_hparam(file, p + "rope.scaling.original_context_length", 1, kMaxContext, c.n_ctx_train);
  c.rope_attn_factor = file.get_f32_opt(p + "rope.scaling.attn_factor").value_or(1.0f);
  if (!(c.rope_attn_factor > 0.0f && c.rope_attn_factor <= 16.0f))
    throw Error(fmt::format("{}: {}rope.scaling.attn_factor is {}, expected a value in (0, 16]", file.path(), p,
                            c.rope_attn_factor));
  c.rope_style = spec.rope_style;
  c.has_qkv_bias = spec.qkv_bias;
  c.has_qk_norm = spec.qk_norm;
  if (spec.read_config) spec.read_config(file, c);
  for (int32_t layer = 0; layer < c.n_layer; ++layer)
    if (c.is_recurrent(layer) && !spec.recurrent_state_floats)
      throw Error(fmt::format("{}: {}attention.head_count_kv[{}] is 0, but {} has no recurrent layers", file.path(), p,
                              layer, spec.name));
  return c;
}

// Every blk.N.* tensor must have N < n_layer, and tensor names must parse.
void check_layer_count(const GgufFile& file, int32_t n_layer) {
  for (const GgufTensor& t : file.tensors()) {
    if (!t.name.starts_with("blk.")) continue;
    const char* begin = t.name.data() + 4;
    const char* end = t.name.data() + t.name.size();
    int64_t index = -1;
    auto [ptr, ec] = std::from_chars(begin, end, index);
    if (ec != std::errc() || ptr == end || *ptr != '.')
      throw Error(fmt::format("{}: tensor name {} has no layer number", file.path(), t.name));
    if (index >= n_layer)
      throw Error(fmt::format("{}: tensor {} belongs to layer {}, but block_count is {}", file.path(), t.name, index,
                              n_layer));
  }
}

// Divisors of the rope frequencies (rope_freqs, LongRoPE's long and short factors): n_rot / 2
// positive values, or nullptr when the file has no such tensor.
const float* rope_factors(const WeightBinder& b, const std::string& name, int32_t n_rot) {
  const float* factors = b.optional_vector(name, n_rot / 2);
  if (factors)
    for (int i = 0; i < n_rot / 2; ++i)
      if (!(factors[i] > 0.0f)) b.fail(fmt::format("{}[{}] is {}, expected a positive factor", name, i, factors[i]));
  return factors;
}

std::unique_ptr<ModelWeights> bind_weights(const GgufFile& file, const ArchSpec& spec, ModelConfig& c) {
  auto weights = std::make_unique<ModelWeights>();
  WeightBinder b{file, *weights};
  const int64_t E = c.n_embd, V = c.n_vocab;

  weights->token_embd = b.matrix("token_embd.weight", E, V);
  weights->output_norm = b.vector(spec.output_norm, E);
  if (const GgufTensor* output = file.find_tensor("output.weight")) {
    weights->output = b.matrix_from(*output, E, V);
  } else {
    weights->output = weights->token_embd;
    c.tied_output = true;
  }
  weights->rope_freq_factors = rope_factors(b, "rope_freqs.weight", c.n_rot);
  c.has_rope_freq_factors = weights->rope_freq_factors != nullptr;
  weights->rope_factors_long = rope_factors(b, "rope_factors_long.weight", c.n_rot);
  weights->rope_factors_short = rope_factors(b, "rope_factors_short.weight", c.n_rot);
  c.has_longrope_factors = weights->rope_factors_long || weights->rope_factors_short;

  check_layer_count(file, c.n_layer + c.n_layer_mtp);
  weights->layers.resize(size_t(c.n_layer));
  const auto bind_layer = spec.bind_layer ? spec.bind_layer : bind_llama_layer;
  for (int32_t i = 0; i < c.n_layer; ++i) bind_layer(b, c, i, weights->layers[size_t(i)]);
  return weights;
}

// 2 MiB pages for the tiles unless LoadOptions::huge_pages or SLM_HUGE_PAGES=off says no: repacked
// into them, or copied from the tile cache where the kernel maps that file 4 KiB at a time.
PageSize tile_page_size(const LoadOptions& options) {
  const char* env = std::getenv("SLM_HUGE_PAGES");
  const bool refused = env && (std::strcmp(env, "off") == 0 || std::strcmp(env, "0") == 0);
  return options.huge_pages && !refused ? PageSize::Huge : PageSize::Small;
}

// The matrices without tiles (F16, BF16, F32) stream from the file's mapping, 4 KiB at a time
// on this project's VMs (FilePmdMapped 26 of Qwen2.5-0.5B F16's 948 MiB): their rows are copied
// into 2 MiB pages, and the file's pages released, so that memory holds them once. A tied
// token embedding follows its output matrix. Where the memory is not there (copy_fits), they stay mapped.
void copy_rows_into_huge_pages(const GgufFile& file, ModelWeights& weights, std::span<ops::WeightMatrix* const> matrices,
                               int n_threads) {
  constexpr uint64_t kAlignment = 64;
  std::vector<std::pair<ops::WeightMatrix*, uint64_t>> placed;
  std::set<const uint8_t*> seen;  // a matrix bound twice (a tied one) is copied once
  uint64_t total_bytes = 0;
  for (ops::WeightMatrix* w : matrices) {
    if (w->interleaved || !w->data || !seen.insert(w->data).second) continue;
    placed.emplace_back(w, total_bytes);
    total_bytes += (uint64_t(w->n_out) * w->row_bytes + kAlignment - 1) / kAlignment * kAlignment;
  }
  if (total_bytes == 0 || !copy_fits(total_bytes, available_memory_bytes())) return;
  try {
    weights.row_copies = PageRegion(total_bytes, PageSize::Huge);
  } catch (const std::bad_alloc&) {
    return;
  }
  const uint8_t* tied_output = weights.output.data == weights.token_embd.data ? weights.output.data : nullptr;
  for (const auto& [w, offset] : placed) {
    uint8_t* copy = weights.row_copies.data() + offset;
    const uint64_t bytes = uint64_t(w->n_out) * w->row_bytes;
    ops::copy_in_chunks(copy, w->data, bytes, n_threads);
    file.release_pages(w->data, bytes);
    for (ops::WeightMatrix* other : matrices)
      if (other != w && other->data == w->data) other->data = copy;
    if (w->data == tied_output) weights.token_embd.data = copy;
    w->data = copy;
  }
}

// Repacks every matrix the forward pass multiplies into the layout the active kernels read
// faster (ops::should_interleave), once, and releases the file's pages of the repacked rows,
// so that memory holds each weight once. A mixture's experts are repacked too: a token reads 8
// of 128 per layer, a few rows each of a prompt's tokens, where the tiles' one-token and
// few-token kernels are 1.3-2.2x the row kernels' (Qwen3-30B-A3B's shape on 2 Zen 4 cores:
// tg128 1.22-1.26x, pp512 1.17-1.33x). Their tiles come from the tile cache like the others',
// so pages of experts never chosen are clean pages of that file, which the kernel can reclaim
// (where the load maps the cache rather than copying it into 2 MiB pages: read_tile_cache).
// A tied output matrix is the token embedding, whose lookups then read the tiles too
// (ops::dequantize_matrix_row). Read from the file, each lookup maps the cached pages around
// its row, as many as the page cache holds together (Linux 6.18 on ext4 maps a large folio
// whole, not the 64 KiB fault-around window): the same 512 tokens made 29 MiB of
// Qwen2.5-0.5B's table resident with one copy of the file and 45 MiB with another, memory
// no plan can know.
// All the tiles share one region, each matrix's at a 64-byte boundary: the model's tile cache
// file when it holds exactly them (tile_cache.hpp), else zero pages they are repacked into,
// then written as the cache for the next load.
void interleave_weights(const GgufFile& file, ModelWeights& weights, const LoadOptions& options) {
  const int n_threads = std::max(1, omp_get_num_procs());
  constexpr uint64_t kAlignment = 64;
  std::vector<TilePlacement> placed;
  uint64_t total_bytes = 0;
  std::vector<ops::WeightMatrix*> matrices = repackable_matrices(weights);
  for (ops::WeightMatrix* w : expert_matrices(weights)) matrices.push_back(w);
  for (ops::WeightMatrix* w : matrices) {
    if (!ops::should_interleave(*w)) continue;
    placed.push_back({w, total_bytes});
    total_bytes += (ops::interleaved_bytes(*w) + kAlignment - 1) / kAlignment * kAlignment;
  }
  const PageSize pages = tile_page_size(options);
  if (CachedTiles cached = read_tile_cache(file, placed, total_bytes, n_threads, pages); cached.tiles) {
    for (const TilePlacement& p : placed) p.matrix->interleaved = cached.tiles + p.offset;
    weights.interleaved_tiles = std::move(cached.mapping);
    weights.tiles_from_cache = true;
  } else {
    try {
      weights.interleaved_tiles = PageRegion(total_bytes, pages);
    } catch (const std::bad_alloc&) {
      throw Error(fmt::format("{}: out of memory for the {} MB of repacked weights", file.path(), total_bytes >> 20));
    }
    const auto report = [&](const char* step, uint64_t done) {
      if (options.on_progress && total_bytes > 0) options.on_progress({step, done, total_bytes});
    };
    for (const TilePlacement& p : placed) {
      report("repacking", p.offset);  // the bytes of the matrices before this one
      uint8_t* tiles = weights.interleaved_tiles.data() + p.offset;
      ops::interleave_matrix(*p.matrix, tiles, n_threads);
      p.matrix->interleaved = tiles;
      file.release_pages(p.matrix->data, uint64_t(ops::n_interleaved_rows(*p.matrix)) * p.matrix->row_bytes);
    }
    report("repacking", total_bytes);
    write_tile_cache(file, placed, weights.interleaved_tiles.data(), total_bytes, n_threads,
                     [&](uint64_t written) { report("writing cache", written); });
  }
  for (ops::WeightMatrix* w : matrices) w->activations = ops::supported_activations(*w, options.activations);
  if (weights.output.data == weights.token_embd.data) weights.token_embd.interleaved = weights.output.interleaved;
  if (pages == PageSize::Huge) copy_rows_into_huge_pages(file, weights, matrices, n_threads);
}

}  // namespace

std::vector<ops::WeightMatrix*> repackable_matrices(ModelWeights& weights) {
  std::vector<ops::WeightMatrix*> matrices = {&weights.output};
  for (LayerWeights& L : weights.layers)
    for (ops::WeightMatrix* w : {&L.attn_q, &L.attn_k, &L.attn_v, &L.attn_output, &L.ffn_gate, &L.ffn_up, &L.ffn_down,
                                 &L.shortconv_in_proj, &L.shortconv_out_proj, &L.ssm_qkv, &L.ssm_z, &L.ssm_out})
      matrices.push_back(w);
  return matrices;
}

std::vector<const ops::WeightMatrix*> repackable_matrices(const ModelWeights& weights) {
  const std::vector<ops::WeightMatrix*> matrices = repackable_matrices(const_cast<ModelWeights&>(weights));
  return {matrices.begin(), matrices.end()};
}

std::vector<ops::WeightMatrix*> expert_matrices(ModelWeights& weights) {
  std::vector<ops::WeightMatrix*> matrices;
  for (LayerWeights& L : weights.layers)
    for (std::vector<ops::WeightMatrix>* experts : {&L.moe.gate, &L.moe.up, &L.moe.down})
      for (ops::WeightMatrix& w : *experts) matrices.push_back(&w);
  return matrices;
}

std::vector<const ops::WeightMatrix*> expert_matrices(const ModelWeights& weights) {
  const std::vector<ops::WeightMatrix*> matrices = expert_matrices(const_cast<ModelWeights&>(weights));
  return {matrices.begin(), matrices.end()};
}

void bind_llama_attention(const WeightBinder& b, const ModelConfig& c, int32_t layer, LayerWeights& L) {
  const std::string p = fmt::format("blk.{}.", layer);
  const int64_t E = c.n_embd, q_dim = int64_t(c.n_head) * c.head_dim, kv_dim = int64_t(c.n_head_kv) * c.head_dim;
  L.attn_norm = b.vector(p + "attn_norm.weight", E);
  L.attn_q = b.matrix(p + "attn_q.weight", E, q_dim);
  L.attn_k = b.matrix(p + "attn_k.weight", E, kv_dim);
  L.attn_v = b.matrix(p + "attn_v.weight", E, kv_dim);
  L.attn_output = b.matrix(p + "attn_output.weight", q_dim, E);
  if (c.has_qkv_bias) {
    L.attn_q_bias = b.vector(p + "attn_q.bias", q_dim);
    L.attn_k_bias = b.vector(p + "attn_k.bias", kv_dim);
    L.attn_v_bias = b.vector(p + "attn_v.bias", kv_dim);
  }
  if (c.has_qk_norm) {
    L.attn_q_norm = b.vector(p + "attn_q_norm.weight", c.head_dim);
    L.attn_k_norm = b.vector(p + "attn_k_norm.weight", c.head_dim);
  }
}

void bind_llama_feed_forward(const WeightBinder& b, const ModelConfig& c, int32_t layer, LayerWeights& L) {
  const std::string p = fmt::format("blk.{}.", layer);
  L.ffn_norm = b.vector(p + "ffn_norm.weight", c.n_embd);
  L.ffn_gate = b.matrix(p + "ffn_gate.weight", c.n_embd, c.n_ff);
  L.ffn_up = b.matrix(p + "ffn_up.weight", c.n_embd, c.n_ff);
  L.ffn_down = b.matrix(p + "ffn_down.weight", c.n_ff, c.n_embd);
}

void bind_llama_layer(const WeightBinder& b, const ModelConfig& c, int32_t layer, LayerWeights& L) {
  bind_llama_attention(b, c, layer, L);
  bind_llama_feed_forward(b, c, layer, L);
}

ModelConfig read_model_config(const GgufFile& file) {
  const std::string& arch = file.get_string("general.architecture");
  const ArchSpec* spec = find_arch(arch);
  if (!spec)
    throw Error(fmt::format("{}: unknown architecture '{}' (slm runs: {})", file.path(), arch, supported_arch_names()));
  return read_config(file, *spec);
}

std::unique_ptr<ModelWeights> bind_model_weights(const GgufFile& file, ModelConfig& config) {
  return bind_weights(file, *find_arch(config.arch), config);
}

// The tokenizer's tables take a single thread about as long as the weights take two to map and
// check (Llama-3.2-1B), so they are built on a thread of their own meanwhile. The weights need
// only the vocabulary's size, the length of the tokens array; a tokenizer error is still the
// one reported when both fail, as when the tokenizer was built first.
std::shared_ptr<const Model> Model::load(const std::string& path, const LoadOptions& options) {
  GgufFile file = GgufFile::open(path);
  ModelConfig config = read_model_config(file);
  std::future<Tokenizer> building = std::async(std::launch::async, [&file] { return Tokenizer::from_gguf(file); });
  std::unique_ptr<ModelWeights> weights;
  try {
    const GgufArray* tokens = file.get_array_opt("tokenizer.ggml.tokens");
    if (!tokens || tokens->strings.empty()) throw Error(fmt::format("{}: no tokenizer.ggml.tokens", file.path()));
    config.n_vocab = int32_t(std::min<size_t>(tokens->strings.size(), INT32_MAX));
    if (std::optional<uint32_t> vocab_size = file.get_u32_opt(config.arch + ".vocab_size");
        vocab_size && int64_t(*vocab_size) != config.n_vocab)
      throw Error(fmt::format("{}: {}.vocab_size is {}, but the tokenizer has {} tokens", file.path(), config.arch,
                              *vocab_size, config.n_vocab));
    weights = bind_model_weights(file, config);
    interleave_weights(file, *weights, options);
  } catch (...) {
    building.get();  // the tokenizer's own error, if it has one
    throw;
  }
  auto tokenizer = std::make_unique<Tokenizer>(building.get());
  if (tokenizer->n_vocab() != config.n_vocab)
    throw Error(fmt::format("{}: the tokenizer has {} tokens, the tokens array {}", file.path(), tokenizer->n_vocab(),
                            config.n_vocab));
  return std::make_shared<const Model>(std::move(file), std::move(config), std::move(tokenizer), std::move(weights));
}

Model::Model(GgufFile gguf, ModelConfig config, std::unique_ptr<Tokenizer> tokenizer,
             std::unique_ptr<ModelWeights> weights)
    : gguf_(std::move(gguf)), config_(std::move(config)), tokenizer_(std::move(tokenizer)), weights_(std::move(weights)) {}

Model::~Model() = default;

std::string Model::chat_template() const {
  const std::string* tmpl = gguf_.get_string_opt("tokenizer.chat_template");
  return tmpl ? *tmpl : std::string();
}

uint64_t Model::n_params() const {
  uint64_t total = 0;
  for (const GgufTensor& t : gguf_.tensors()) total += t.n_elements();
  return total;
}

uint64_t Model::weight_bytes() const {
  uint64_t total = 0;
  for (const GgufTensor& t : gguf_.tensors()) total += t.n_bytes;
  return total;
}

}  // namespace slm
