// The register types of attention_queries_avx2.cpp (and of its AVX-512 build): the lanes that
// hold queries (scores, softmax state) and rows (keys, values, outputs), and exp in any of them.
// Included by that file alone, inside its namespace, so that each build gets its own.
// Eight queries per ymm register: the lanes of the scores and the softmax state.
struct QueryLanes8 {
  using Vec = __m256;
  using Mask = __m256;  // all ones in the selected lanes
  static constexpr int32_t kLanes = 8;
  static constexpr int kVectors = 2;  // query vectors x kKeys accumulators of a score tile (16 ymm registers)
  static constexpr int kKeys = 4;
  static constexpr int kKeysPerVector = 1;  // a vector's lanes are W queries' scores of one key
  static Vec load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, Vec v) { _mm256_storeu_ps(p, v); }
  static Vec zero() { return _mm256_setzero_ps(); }
  static Vec broadcast(float v) { return _mm256_set1_ps(v); }
  static Vec fma(Vec a, Vec b, Vec acc) { return _mm256_fmadd_ps(a, b, acc); }
  static Vec fnmadd(Vec a, Vec b, Vec c) { return _mm256_fnmadd_ps(a, b, c); }  // c - a * b, rounded once
  static Vec mul(Vec a, Vec b) { return _mm256_mul_ps(a, b); }
  static Vec add(Vec a, Vec b) { return _mm256_add_ps(a, b); }
  static Vec sub(Vec a, Vec b) { return _mm256_sub_ps(a, b); }
  static Vec max(Vec a, Vec b) { return _mm256_max_ps(a, b); }  // b where a is NaN
  // The float whose exponent field is v's low 8 bits (the rest of its bits shifted out).
  static Vec exponent_field(Vec v) { return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(v), 23)); }
  // Lanes whose first <= key < end (key indices as floats: exact below 2^24).
  static Mask visible(float key, const float* first, const float* end) {
    const __m256 k = _mm256_set1_ps(key);
    return _mm256_and_ps(_mm256_cmp_ps(_mm256_loadu_ps(first), k, _CMP_LE_OQ), _mm256_cmp_ps(_mm256_loadu_ps(end), k, _CMP_GT_OQ));
  }
  static Vec select(Mask m, Vec a, Vec b) { return _mm256_blendv_ps(b, a, m); }
  // Integer lanes, for the int16 x int16 pairs of a Q8_0 cache's scores (score_tile_q8_0).
  using IVec = __m256i;
  static IVec izero() { return _mm256_setzero_si256(); }
  static IVec iload(const int32_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
  static IVec ibroadcast(const int32_t* p) { return _mm256_set1_epi32(*p); }
  // acc + the sum of the two products of each lane's int16 pair (exact while it stays below 2^31)
  static IVec madd_add(IVec acc, IVec a, IVec b) {
#if defined(__AVX512VNNI__)
    // The same sum in one instruction (no saturation either). In asm, with the accumulator tied:
    // GCC 12 copies every accumulator of a tile to another register at each use of the builtin.
    asm("vpdpwssd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b));
    return acc;
#else
    return _mm256_add_epi32(acc, _mm256_madd_epi16(a, b));
#endif
  }
  static Vec to_float(IVec v) { return _mm256_cvtepi32_ps(v); }  // rounded to nearest even
};

// Four queries or fewer (a decode step's heads of a KV head, in Qwen3.5, LFM2, Llama 3.2) with
// two keys per ymm register: query i in lanes 2i and 2i + 1, the scores of keys 2r and 2r + 1 in
// them, so that no lane idles. The keys of a block are interleaved in pairs (element d of keys 2r
// and 2r + 1 side by side) and broadcast two at a time.
struct KeyPairLanes8 : QueryLanes8 {
  static constexpr int kKeysPerVector = 2;
  static Vec broadcast_pair(const float* p) { return _mm256_castpd_ps(_mm256_broadcast_sd(reinterpret_cast<const double*>(p))); }
  static Vec swap_pairs(Vec v) { return _mm256_permute_ps(v, 0xB1); }  // lane 2i <-> lane 2i + 1
  // Lanes whose first <= key (key 2r in even lanes, 2r + 1 in odd ones) < end.
  static Mask visible(float key, const float* first, const float* end) {
    const __m256 k = _mm256_add_ps(_mm256_set1_ps(key), _mm256_setr_ps(0, 1, 0, 1, 0, 1, 0, 1));
    return _mm256_and_ps(_mm256_cmp_ps(_mm256_loadu_ps(first), k, _CMP_LE_OQ), _mm256_cmp_ps(_mm256_loadu_ps(end), k, _CMP_GT_OQ));
  }
};

#if defined(__AVX512F__)
// Sixteen queries per zmm register.
struct QueryLanes16 {
  using Vec = __m512;
  using Mask = __mmask16;
  static constexpr int32_t kLanes = 16;
  static constexpr int kVectors = 4;  // 16 of the 32 zmm registers accumulate
  static constexpr int kKeys = 4;
  static constexpr int kKeysPerVector = 1;
  static Vec load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, Vec v) { _mm512_storeu_ps(p, v); }
  static Vec zero() { return _mm512_setzero_ps(); }
  static Vec broadcast(float v) { return _mm512_set1_ps(v); }
  static Vec fma(Vec a, Vec b, Vec acc) { return _mm512_fmadd_ps(a, b, acc); }
  static Vec fnmadd(Vec a, Vec b, Vec c) { return _mm512_fnmadd_ps(a, b, c); }
  static Vec mul(Vec a, Vec b) { return _mm512_mul_ps(a, b); }
  static Vec add(Vec a, Vec b) { return _mm512_add_ps(a, b); }
  static Vec sub(Vec a, Vec b) { return _mm512_sub_ps(a, b); }
  static Vec max(Vec a, Vec b) { return _mm512_max_ps(a, b); }  // b where a is NaN
  static Vec exponent_field(Vec v) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_castps_si512(v), 23)); }
  static Mask visible(float key, const float* first, const float* end) {
    const __m512 k = _mm512_set1_ps(key);
    return _mm512_cmp_ps_mask(_mm512_loadu_ps(first), k, _CMP_LE_OQ) & _mm512_cmp_ps_mask(_mm512_loadu_ps(end), k, _CMP_GT_OQ);
  }
  static Vec select(Mask m, Vec a, Vec b) { return _mm512_mask_blend_ps(m, b, a); }
  using IVec = __m512i;
  static IVec izero() { return _mm512_setzero_si512(); }
  static IVec iload(const int32_t* p) { return _mm512_loadu_si512(p); }
  static IVec ibroadcast(const int32_t* p) { return _mm512_set1_epi32(*p); }
  static IVec madd_add(IVec acc, IVec a, IVec b) {  // the build has VNNI; asm as QueryLanes8's
    asm("vpdpwssd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b));
    return acc;
  }
  static Vec to_float(IVec v) { return _mm512_cvtepi32_ps(v); }
};

// A row of head_dim floats (a key, a value, an output) 16 floats per zmm register.
struct RowLanes {
  using Vec = __m512;
  static constexpr int32_t kWidth = 16;
  static constexpr int kRegisters = 32;
  static constexpr int kAccumulators = 16;  // of the 32 zmm registers
  static __mmask16 first(int32_t count) { return __mmask16((1u << count) - 1); }
  // The first `count` floats from row (all 16 when count >= 16), zero after.
  static Vec load(const float* row, int32_t count) {
    return count >= kWidth ? _mm512_loadu_ps(row) : _mm512_maskz_loadu_ps(first(count), row);
  }
  static Vec load(const uint16_t* row, int32_t count) {
    return _mm512_cvtph_ps(count >= kWidth ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row))
                                           : _mm256_maskz_loadu_epi16(first(count), row));
  }
  // 16 int8 values (of a Q8_0 block) as floats.
  static Vec load_q8(const int8_t* q) { return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q)))); }
  static void store(float* row, Vec v, int32_t count) {
    if (count >= kWidth) _mm512_storeu_ps(row, v);
    else _mm512_mask_storeu_ps(row, first(count), v);
  }
  static Vec broadcast(float v) { return _mm512_set1_ps(v); }
  static Vec fma(Vec a, Vec b, Vec acc) { return _mm512_fmadd_ps(a, b, acc); }
  static Vec mul(Vec a, Vec b) { return _mm512_mul_ps(a, b); }
};
#else
// A row of head_dim floats (a key, a value, an output) 8 floats per ymm register.
struct RowLanes {
  using Vec = __m256;
  static constexpr int32_t kWidth = 8;
  static constexpr int kRegisters = 16;
  static constexpr int kAccumulators = 8;  // of the 16 ymm registers
  // The first `count` floats from row (all 8 when count >= 8), zero after.
  static Vec load(const float* row, int32_t count) { return load_row8(row, count); }
  static Vec load(const uint16_t* row, int32_t count) { return load_row8(row, count); }
  // 8 int8 values (of a Q8_0 block) as floats.
  static Vec load_q8(const int8_t* q) { return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(q)))); }
  static void store(float* row, Vec v, int32_t count) { store_row8(row, v, count); }
  static Vec broadcast(float v) { return _mm256_set1_ps(v); }
  static Vec fma(Vec a, Vec b, Vec acc) { return _mm256_fmadd_ps(a, b, acc); }
  static Vec mul(Vec a, Vec b) { return _mm256_mul_ps(a, b); }
};
#endif
using Vec = RowLanes::Vec;
constexpr int32_t kWidth = RowLanes::kWidth;

// exp(x) for x <= 0 (scores minus their maximum): x = n ln2 + r with |r| <= ln2/2, then 2^n times
// Cephes' expf polynomial of r (avx2::exp_nonpositive's), in any lanes: the same operations, so
// the same bits in a ymm or a zmm register. n is rounded by adding 1.5 x 2^23 + 127 (to nearest:
// the sum's low mantissa bits are n + 127), which also gives 2^n's exponent field by one shift: no
// round and no conversion, which cost more than FMAs on Zen 3 (7.6 against 9.6 cycles per 8
// lanes; within 1.2 ulp of exp either way).
template <class L>
typename L::Vec exp_nonpositive(typename L::Vec x) {
  using V = typename L::Vec;
  x = L::max(x, L::broadcast(-87.3f));  // below, exp is under FLT_MIN: 2^-126 stands in for it; NaN (-inf - -inf) too
  const V shifter = L::broadcast(0x1.8p23f + 127.0f);
  const V n_shifted = L::fma(x, L::broadcast(1.44269504088896341f), shifter);  // n + 127 in the low mantissa bits
  const V n = L::sub(n_shifted, shifter);  // exact: -126 <= n <= 0
  V r = L::fnmadd(n, L::broadcast(0.693359375f), x);  // ln2 split in two for an exact first step
  r = L::fnmadd(n, L::broadcast(-2.12194440e-4f), r);
  V p = L::broadcast(1.9875691500e-4f);
  p = L::fma(p, r, L::broadcast(1.3981999507e-3f));
  p = L::fma(p, r, L::broadcast(8.3334519073e-3f));
  p = L::fma(p, r, L::broadcast(4.1665795894e-2f));
  p = L::fma(p, r, L::broadcast(1.6666665459e-1f));
  p = L::fma(p, r, L::broadcast(5.0000001201e-1f));
  const V two_to_n = L::exponent_field(n_shifted);
  return L::fma(L::fma(L::mul(p, r), r, r), two_to_n, two_to_n);  // (e^r - 1) 2^n + 2^n
}
