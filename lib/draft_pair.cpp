// Draft/target pairs with controlled agreement; see include/slm/draft_pair.hpp.
#include "slm/draft_pair.hpp"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <optional>
#include <vector>

#include "kernels/dequantize.hpp"
#include "kernels/quantize.hpp"
#include "slm/gguf.hpp"
#include "slm/gguf_writer.hpp"

namespace slm {

namespace {

// The layer of a "blk.N.*" tensor, or nullopt.
std::optional<int32_t> layer_of(const std::string& name) {
  if (!name.starts_with("blk.")) return std::nullopt;
  int32_t layer = 0;
  const char* begin = name.data() + 4;
  const auto [end, error] = std::from_chars(begin, name.data() + name.size(), layer);
  if (error != std::errc() || end == begin) return std::nullopt;
  return layer;
}

bool is_residual_output(const std::string& name) {
  return name.ends_with(".attn_output.weight") || name.ends_with(".ffn_down.weight") ||
         name.ends_with(".ffn_down_exps.weight");
}

// Multiplies every row by `scale`, and the rows from `from_row` on by `later_rows` as well.
struct RowScale {
  float scale = 1.0f;
  uint64_t from_row = UINT64_MAX;
  float later_rows = 1.0f;
  bool changes_nothing() const { return scale == 1.0f && (from_row == UINT64_MAX || later_rows == 1.0f); }
  float of(uint64_t row) const { return row >= from_row ? scale * later_rows : scale; }
};

// The tensor's rows multiplied as `scale` says, written in `type`.
std::vector<uint8_t> converted_copy(const GgufTensor& tensor, RowScale scale, GgmlType type) {
  if (!kernels::can_quantize(type))
    throw Error(fmt::format("{}: cannot write {} tensors", tensor.name, ggml_type_name(type)));
  const int64_t n = int64_t(tensor.ne[0]);
  const uint32_t block_size = ggml_type_info(type).block_size;
  if (!ggml_type_info(type).weight_format || n % block_size != 0)
    throw Error(fmt::format("{}: rows of {} cannot be written as {} weights (blocks of {})", tensor.name, n,
                            ggml_type_name(type), block_size));
  const uint64_t row_bytes = ggml_row_bytes(tensor.type, tensor.ne[0]);
  const uint64_t out_row_bytes = ggml_row_bytes(type, tensor.ne[0]);
  std::vector<uint8_t> out(size_t(out_row_bytes * tensor.n_rows()));
  std::vector<float> row(size_t(n), 0.0f);
  for (uint64_t r = 0; r < tensor.n_rows(); ++r) {
    kernels::dequantize_row(tensor.type, tensor.data + r * row_bytes, row.data(), n);
    if (const float factor = scale.of(r); factor != 1.0f)
      for (float& x : row) x *= factor;
    kernels::quantize_row(type, row.data(), out.data() + r * out_row_bytes, n);
  }
  return out;
}

// Adds `tensor` as `name`, scaled by `scale` in `type`, or as it is when neither changes it.
void add_tensor(GgufWriter& writer, const std::string& name, const GgufTensor& tensor, RowScale scale, GgmlType type) {
  const std::vector<uint64_t> shape(tensor.ne.begin(), tensor.ne.begin() + tensor.n_dims);
  if (scale.changes_nothing() && type == tensor.type)
    writer.add_tensor(name, tensor.type, shape, {tensor.data, tensor.data + tensor.n_bytes});
  else
    writer.add_tensor(name, type, shape, converted_copy(tensor, scale, type));
}

double standard_normal_cdf(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }

}  // namespace

double frequent_head_scale(int64_t n_frequent, int64_t n_vocab, double share) {
  if (n_frequent < 1 || n_frequent >= n_vocab || !(share > 0.0 && share < 1.0))
    throw Error(fmt::format("a frequent vocabulary of {} of {} tokens holding a share of {} of the argmaxes: want "
                            "1 <= N < {} and a share strictly between 0 and 1", n_frequent, n_vocab, share, n_vocab));
  // P(the largest of N standard normal logits beats the largest of M normal logits of deviation s)
  // = integral of N phi(x) Phi(x)^(N-1) Phi(x / s)^M dx, summed on a fine grid (x in [-9, 9]).
  const double n = double(n_frequent), m = double(n_vocab - n_frequent);
  const auto share_at = [&](double s) {
    constexpr double kStep = 1e-3;
    double total = 0.0;
    for (double x = -9.0; x <= 9.0; x += kStep) {
      const double density = n * std::exp(-0.5 * x * x) / std::sqrt(2.0 * M_PI);
      const double log_rest = (n - 1.0) * std::log(standard_normal_cdf(x)) + m * std::log(standard_normal_cdf(x / s));
      total += density * std::exp(log_rest) * kStep;
    }
    return total;
  };
  // The share falls as s grows: bisect on log s within [1/1000, 1000].
  double low = std::log(1e-3), high = std::log(1e3);
  for (int i = 0; i < 40; ++i) {  // to 1e-11 of log s
    const double mid = 0.5 * (low + high);
    (share_at(std::exp(mid)) > share ? low : high) = mid;
  }
  return std::exp(0.5 * (low + high));
}

float write_draft_pair(const std::string& input_path, const std::string& target_path, const std::string& draft_path,
                      const DraftPairOptions& options) {
  const GgufFile input = GgufFile::open(input_path);
  const std::string& arch = input.get_string("general.architecture");
  const std::string block_count_key = arch + ".block_count";
  const int32_t n_layer = int32_t(input.get_u32(block_count_key));
  if (options.draft_layers < 1 || options.draft_layers >= n_layer)
    throw Error(fmt::format("{}: the draft must keep 1 to {} of the {} layers, not {}", input_path, n_layer - 1, n_layer,
                            options.draft_layers));
  const std::string* name = input.get_string_opt("general.name");
  const std::string base_name = name ? *name : "model";

  GgufWriter target, draft;
  for (const GgufKeyValue& kv : input.metadata()) {
    if (kv.key == "general.name") continue;
    target.add(kv.key, kv.value);
    if (kv.key == block_count_key) draft.add_u32(kv.key, uint32_t(options.draft_layers));
    else draft.add(kv.key, kv.value);
  }
  target.add_string("general.name", fmt::format("{} target (layers {}+ x{})", base_name, options.draft_layers,
                                                options.residual_scale));
  draft.add_string("general.name", fmt::format("{} draft ({} layers)", base_name, options.draft_layers));

  const bool has_output = input.find_tensor("output.weight") != nullptr;
  const std::string head_name = has_output ? "output.weight" : "token_embd.weight";
  // A frequent vocabulary: the head's rows of ids >= frequent_vocab scaled down, in a head of its
  // own (output.weight) when it was tied to the embeddings, which stay as they were.
  RowScale head_scale;
  if (options.frequent_vocab > 0) {
    const GgufTensor* head = input.find_tensor(head_name);
    if (!head || head->n_dims != 2) throw Error(fmt::format("{}: no two-dimensional {}", input_path, head_name));
    head_scale = {.from_row = uint64_t(options.frequent_vocab),
                  .later_rows = float(frequent_head_scale(options.frequent_vocab, int64_t(head->ne[1]),
                                                          options.frequent_share))};
  }
  const bool own_head = options.frequent_vocab > 0 && !has_output;
  for (const GgufTensor& tensor : input.tensors()) {
    const std::optional<int32_t> layer = layer_of(tensor.name);
    const bool later = layer && *layer >= options.draft_layers;
    const float attention = tensor.name.ends_with(".attn_output.weight") ? options.attention_scale : 1.0f;
    const float residual = later && is_residual_output(tensor.name) ? options.residual_scale : 1.0f;
    const bool head = tensor.name == head_name;
    RowScale target_scale{.scale = attention * residual}, draft_scale{.scale = attention};
    if (head && !own_head) target_scale = draft_scale = head_scale;
    const GgmlType draft_type = head && !own_head && options.draft_head_type ? *options.draft_head_type : tensor.type;
    add_tensor(target, tensor.name, tensor, target_scale, tensor.type);
    if (!later) add_tensor(draft, tensor.name, tensor, draft_scale, draft_type);
    if (!head || !own_head) continue;
    add_tensor(target, "output.weight", tensor, head_scale, tensor.type);
    add_tensor(draft, "output.weight", tensor, head_scale, options.draft_head_type.value_or(tensor.type));
  }
  target.write_file(target_path);
  draft.write_file(draft_path);
  return head_scale.later_rows;
}

}  // namespace slm
