#include "lib/ops/moe.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "lib/ops/thread_pool.hpp"

namespace slm::ops {

MoeScratch::MoeScratch(const ModelConfig& c, int32_t n_rows) {
  if (c.n_expert == 0) return;
  const int64_t n_entries = int64_t(n_rows) * c.n_expert_used;
  const auto entries = [&](int64_t width) { return std::vector<float>(size_t(n_entries) * size_t(width)); };
  logits = std::vector<float>(size_t(n_rows) * size_t(c.n_expert));
  chosen.resize(size_t(n_entries));
  group_begin.resize(size_t(c.n_expert) + 1);
  group_row.resize(size_t(n_entries));
  group_weight.resize(size_t(n_entries));
  x = entries(c.n_embd);
  gate = entries(c.n_ff_exp);
  up = entries(c.n_ff_exp);
  out = entries(c.n_embd);
  gate_up_products.reserve(2 * size_t(c.n_expert));
  down_products.reserve(size_t(c.n_expert));
}

void route_row(const float* logits, int32_t n_expert, int32_t k, ExpertChoice* chosen) {
  // Softmax as ggml_soft_max computes it: exp(l - max), summed in double, times 1 / sum.
  thread_local std::vector<float> probs;
  thread_local std::vector<char> taken;
  probs.resize(size_t(n_expert));
  taken.assign(size_t(n_expert), 0);
  float max_logit = logits[0];
  for (int32_t e = 1; e < n_expert; ++e) max_logit = std::max(max_logit, logits[e]);
  double sum = 0.0;
  for (int32_t e = 0; e < n_expert; ++e) sum += probs[size_t(e)] = std::exp(logits[e] - max_logit);
  const float inverse_sum = float(1.0 / sum);
  for (float& p : probs) p *= inverse_sum;

  // Top k by selection: each rank takes the first untaken expert of highest probability, so a
  // tie goes to the lower id, and k distinct experts are taken even when a logit is NaN.
  float chosen_sum = 0.0f;
  for (int32_t r = 0; r < k; ++r) {
    int32_t best = -1;
    for (int32_t e = 0; e < n_expert; ++e)
      if (!taken[size_t(e)] && (best < 0 || probs[size_t(e)] > probs[size_t(best)])) best = e;
    taken[size_t(best)] = 1;
    chosen[r] = {best, probs[size_t(best)]};
    chosen_sum += probs[size_t(best)];
  }
  for (int32_t r = 0; r < k; ++r) chosen[r].weight /= chosen_sum;
}

// Sorts the rows' choices into one group per expert (a counting sort: rows ascending in a group).
static void group_by_expert(const ExpertChoice* chosen, int64_t n_rows, int32_t k, int32_t n_expert, MoeScratch& s) {
  std::fill(s.group_begin.begin(), s.group_begin.begin() + n_expert + 1, 0);
  for (int64_t i = 0; i < n_rows * k; ++i) ++s.group_begin[size_t(chosen[i].expert) + 1];
  for (int32_t e = 0; e < n_expert; ++e) s.group_begin[size_t(e) + 1] += s.group_begin[size_t(e)];
  thread_local std::vector<int32_t> next;
  next.assign(s.group_begin.begin(), s.group_begin.begin() + n_expert);
  for (int64_t t = 0; t < n_rows; ++t)
    for (int32_t r = 0; r < k; ++r) {
      const ExpertChoice& c = chosen[t * k + r];
      const int32_t entry = next[size_t(c.expert)]++;
      s.group_row[size_t(entry)] = int32_t(t);
      s.group_weight[size_t(entry)] = c.weight;
    }
}

// This thread's share of the products' output rows, in lines of kMatmulRowsPerLine rows: the
// lines in order, cut into one contiguous run per thread of about equal cost, a line costing its
// weights' read plus one unit per row multiplied with them. A row's bits depend neither on the
// thread that computes it nor on the other rows of its product.
static void multiply_share(const std::vector<ExpertProduct>& products, int64_t part, int64_t n_parts) {
  const auto n_lines = [](const ExpertProduct& p) { return (p.w->n_out + kMatmulRowsPerLine - 1) / kMatmulRowsPerLine; };
  int64_t total_cost = 0;
  for (const ExpertProduct& p : products) total_cost += n_lines(p) * (p.n_rows + 1);
  const int64_t first = part * total_cost / n_parts, end = (part + 1) * total_cost / n_parts;
  int64_t cost0 = 0;  // the cost of the lines before product p
  for (const ExpertProduct& p : products) {
    const int64_t lines = n_lines(p), line_cost = p.n_rows + 1;
    // The lines of p whose cost starts before `cost`.
    const auto lines_before = [&](int64_t cost) {
      return cost <= cost0 ? 0 : std::min(lines, (cost - cost0 + line_cost - 1) / line_cost);
    };
    const int64_t begin = lines_before(first), stop = lines_before(end);
    if (begin < stop)
      matmul_row_range(*p.w, p.x, p.n_rows, p.y, begin * kMatmulRowsPerLine, stop * kMatmulRowsPerLine);
    cost0 += lines * line_cost;
  }
}

void moe_feed_forward(const MoeWeights& w, const float* x, int64_t n_rows, float* y, MoeScratch& s, int n_threads) {
  const int32_t n_expert = w.n_expert(), k = w.n_expert_used;
  const int64_t n_embd = w.router.n_in, n_ff = w.gate[0].n_out, n_entries = n_rows * k;
  matmul(w.router, x, n_rows, s.logits.data(), n_threads);
  for (int64_t t = 0; t < n_rows; ++t) route_row(s.logits.data() + t * n_expert, n_expert, k, s.chosen.data() + t * k);
  group_by_expert(s.chosen.data(), n_rows, k, n_expert, s);

  // Each entry's row of x, grouped by expert; the products of the experts that have rows (the
  // others are never read: the point of a mixture of experts).
  for (int64_t i = 0; i < n_entries; ++i)
    std::memcpy(s.x.data() + i * n_embd, x + s.group_row[size_t(i)] * n_embd, size_t(n_embd) * sizeof(float));
  s.gate_up_products.clear();
  s.down_products.clear();
  for (int32_t e = 0; e < n_expert; ++e) {
    const int64_t begin = s.group_begin[size_t(e)], n_group = s.group_begin[size_t(e) + 1] - begin;
    if (n_group == 0) continue;
    const float* group_x = s.x.data() + begin * n_embd;
    s.gate_up_products.push_back({&w.gate[size_t(e)], group_x, n_group, s.gate.data() + begin * n_ff});
    s.gate_up_products.push_back({&w.up[size_t(e)], group_x, n_group, s.up.data() + begin * n_ff});
    s.down_products.push_back({&w.down[size_t(e)], s.gate.data() + begin * n_ff, n_group, s.out.data() + begin * n_embd});
  }
  // One loop for all the experts' gate and up products, one for their down products, not one
  // per product: a layer has 3k of them for a single token, each too small to pay for its own.
  // The parts are chunks of equal cost (multiply_share), several per thread.
  const int n_parts = n_threads * 4;
  parallel_for(n_parts, 1, n_threads, [&](int64_t part, int64_t, int) { multiply_share(s.gate_up_products, part, n_parts); });
  parallel_for(n_entries, 1, n_threads, [&](int64_t i, int64_t, int) {
    swiglu_in_place(s.gate.data() + i * n_ff, s.up.data() + i * n_ff, n_ff);
  });
  parallel_for(n_parts, 1, n_threads, [&](int64_t part, int64_t, int) { multiply_share(s.down_products, part, n_parts); });
  // Each row adds its experts' outputs in entry order, which is ascending expert id, whatever
  // else is in the batch; each part sums its own columns.
  parallel_for(n_parts, 1, n_threads, [&](int64_t part, int64_t, int) {
    const int64_t column_begin = part * n_embd / n_parts, column_end = (part + 1) * n_embd / n_parts;
    for (int64_t t = 0; t < n_rows; ++t) std::fill(y + t * n_embd + column_begin, y + t * n_embd + column_end, 0.0f);
    for (int64_t i = 0; i < n_entries; ++i) {
      float* row = y + s.group_row[size_t(i)] * n_embd;
      const float* expert_out = s.out.data() + i * n_embd;
      const float weight = s.group_weight[size_t(i)];
      for (int64_t j = column_begin; j < column_end; ++j) row[j] += weight * expert_out[j];
    }
  });
}

}  // namespace slm::ops
