// The Q8_0 cache's integer scores (kernels/attention.hpp, score_q8_0) for the grouped attention of
// attention_queries_avx2.cpp: included by that file alone, inside its namespace, after its Scratch
// and KeyBlock, so that each build (AVX2, AVX-512) gets its own.

// score_tile's scores against a Q8_0 cache's keys (attention.hpp, score_q8_0): the queries as int16
// pairs (the int32 slots of sc.queries, pair p of vector v at [v][p][lane]), each key's pair
// broadcast, an exact int32 dot product per 32-element block (vpmaddwd: two products per lane),
// then s = fma(float(dot), dq * dk, s) block by block and the scale, as the reference. The weights
// of the block hold s between blocks.
// kHeadDim > 0: head_dim, known when compiling, so that each key's address is an immediate offset.
template <class L, int kVectors, int kKeys, int32_t kHeadDim>
void score_tile_q8_0(const Scratch<L>& sc, int32_t v, const KeyBlock& block, int32_t j, int32_t head_dim, float scale) {
  constexpr int32_t W = L::kLanes, kPairsPerBlock = kLegacyBlockSize / 2;
  using V = typename L::Vec;
  using I = typename L::IVec;
  if constexpr (kHeadDim > 0) head_dim = kHeadDim;
  const int32_t n_pairs = head_dim / 2, n_blocks = head_dim / kLegacyBlockSize;
  const int32_t* q = reinterpret_cast<const int32_t*>(sc.queries) + int64_t(v) * head_dim * W;
  const int32_t* key = reinterpret_cast<const int32_t*>(block.keys_q16) + int64_t(j) * n_pairs;
  NextLines next = *block.next_keys;
  for (int32_t b = 0; b < n_blocks; ++b) {
    I acc[kVectors][kKeys];
    for (int i = 0; i < kVectors; ++i)
      for (int k = 0; k < kKeys; ++k) acc[i][k] = L::izero();
    // The next block's lines asked for here, not in the loop: its branch would split the loop in
    // two, and GCC then moves every accumulator between registers at each pair.
    for (int f = 0; f < 4; ++f) next.fetch();
    for (int32_t p = b * kPairsPerBlock; p < (b + 1) * kPairsPerBlock; ++p) {
      I key_p[kKeys];
      for (int k = 0; k < kKeys; ++k) key_p[k] = L::ibroadcast(key + k * n_pairs + p);
      for (int i = 0; i < kVectors; ++i) {
        const I q_p = L::iload(q + (int64_t(i) * head_dim + p) * W);
        for (int k = 0; k < kKeys; ++k) acc[i][k] = L::madd_add(acc[i][k], q_p, key_p[k]);
      }
    }
    for (int i = 0; i < kVectors; ++i)
      for (int k = 0; k < kKeys; ++k) {
        float* score = sc.weights + (int64_t(j + k) * sc.n_vectors + v + i) * W;
        const V factor = L::mul(L::load(sc.dq + (int64_t(v + i) * n_blocks + b) * W),
                                L::broadcast(block.key_scales[(j + k) * n_blocks + b]));
        V s = L::fma(L::to_float(acc[i][k]), factor, b == 0 ? L::zero() : L::load(score));
        if (b == n_blocks - 1) s = L::mul(s, L::broadcast(scale));
        L::store(score, s);
      }
  }
  *block.next_keys = next;
}

// n Q8_0 rows (head_dim / 32 blocks each), stride blocks apart, as int16 rows of head_dim,
// head_dim apart, and their scales, head_dim / 32 per row (score_tile_q8_0's keys).
void widen_rows(const BlockQ8_0* rows, int64_t stride, int32_t n, int32_t head_dim, int16_t* out, float* scales) {
  const int32_t n_blocks = head_dim / kLegacyBlockSize;
  for (int32_t j = 0; j < n; ++j)
    for (int32_t b = 0; b < n_blocks; ++b) {
      const BlockQ8_0& block = rows[j * stride + b];
      scales[j * n_blocks + b] = _cvtsh_ss(block.d);  // exact, as fp16_to_fp32
      int16_t* row = out + j * head_dim + b * kLegacyBlockSize;
      for (int32_t i = 0; i < kLegacyBlockSize; i += 16)
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(row + i),
                            _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block.qs + i))));
    }
}

// Every query quantized as quantize_query_q8_0 does (the same function: the reference's bits),
// into sc.queries as int16 pairs and sc.dq; padding lanes score 0.
template <class L>
void quantize_queries(const AttentionQueries& a, const Scratch<L>& sc) {
  constexpr int32_t W = L::kLanes;
  const int32_t D = a.head_dim, n_blocks = D / kLegacyBlockSize, n_queries = a.n_tokens * a.n_heads;
  thread_local std::vector<int16_t> q16;  // per thread, kept between calls
  thread_local std::vector<float> dq;
  q16.resize(size_t(D));
  dq.resize(size_t(n_blocks));
  for (int32_t lane = 0; lane < sc.n_vectors * W; ++lane) {
    const int32_t v = lane / W, l = lane % W;
    if (lane < n_queries) {
      quantize_query_q8_0(a.q + (lane / a.n_heads) * a.token_stride + int64_t(lane % a.n_heads) * D, D, q16.data(), dq.data());
    } else {
      std::fill(q16.begin(), q16.end(), int16_t(0));
      std::fill(dq.begin(), dq.end(), 0.0f);
    }
    int32_t* pairs = reinterpret_cast<int32_t*>(sc.queries) + int64_t(v) * D * W + l;
    for (int32_t p = 0; p < D / 2; ++p) std::memcpy(pairs + int64_t(p) * W, &q16[size_t(2 * p)], sizeof(int32_t));
    for (int32_t b = 0; b < n_blocks; ++b) sc.dq[(v * n_blocks + b) * W + l] = dq[size_t(b)];
  }
}

