// AVX2 vector exp, log and the Mamba activations built on them (Cephes
// single-precision polynomials, about 2 ulp). Include only from files whose
// callers carry JAMBA_AVX2; every function here is target("avx2,fma").
#pragma once

#include <immintrin.h>

#define JAMBA_AVX2 __attribute__((target("avx2,fma")))

namespace jamba::kernels::avx2 {

// exp(v[i]) for each i in place, v clamped to [-88.38, 88.38] (tiny results
// flush to 0). Each step is applied to all kN vectors before the next, so
// that kN > 1 overlaps their latencies; every lane's result is the same for
// any kN.
template <int kN>
JAMBA_AVX2 inline void ExpN(__m256 (&v)[kN]) {
  __m256 n[kN], r[kN], p[kN];
  for (int i = 0; i < kN; ++i) {
    v[i] = _mm256_min_ps(_mm256_max_ps(v[i], _mm256_set1_ps(-88.3762626647949f)),
                         _mm256_set1_ps(88.3762626647949f));
  }
  // v = n ln2 + r, |r| <= ln2 / 2, with ln2 split in two for accuracy.
  for (int i = 0; i < kN; ++i) {
    n[i] = _mm256_round_ps(_mm256_mul_ps(v[i], _mm256_set1_ps(1.44269504088896341f)),
                           _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  for (int i = 0; i < kN; ++i) r[i] = _mm256_fnmadd_ps(n[i], _mm256_set1_ps(0.693359375f), v[i]);
  for (int i = 0; i < kN; ++i) r[i] = _mm256_fnmadd_ps(n[i], _mm256_set1_ps(-2.12194440e-4f), r[i]);
  for (int i = 0; i < kN; ++i) {
    p[i] =
        _mm256_fmadd_ps(_mm256_set1_ps(1.9875691500e-4f), r[i], _mm256_set1_ps(1.3981999507e-3f));
  }
  for (int i = 0; i < kN; ++i) p[i] = _mm256_fmadd_ps(p[i], r[i], _mm256_set1_ps(8.3334519073e-3f));
  for (int i = 0; i < kN; ++i) p[i] = _mm256_fmadd_ps(p[i], r[i], _mm256_set1_ps(4.1665795894e-2f));
  for (int i = 0; i < kN; ++i) p[i] = _mm256_fmadd_ps(p[i], r[i], _mm256_set1_ps(1.6666665459e-1f));
  for (int i = 0; i < kN; ++i) p[i] = _mm256_fmadd_ps(p[i], r[i], _mm256_set1_ps(5.0000001201e-1f));
  for (int i = 0; i < kN; ++i) {
    p[i] =
        _mm256_fmadd_ps(p[i], _mm256_mul_ps(r[i], r[i]), _mm256_add_ps(r[i], _mm256_set1_ps(1.0f)));
  }
  // 2^n from the exponent bits; n = -127 gives 0.
  for (int i = 0; i < kN; ++i) {
    const __m256i e =
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n[i]), _mm256_set1_epi32(127)), 23);
    v[i] = _mm256_mul_ps(p[i], _mm256_castsi256_ps(e));
  }
}

// exp(v): ExpN on one vector.
JAMBA_AVX2 inline __m256 Exp(__m256 v) {
  __m256 one[1] = {v};
  ExpN(one);
  return one[0];
}

// log(v) for finite v > 0.
JAMBA_AVX2 inline __m256 Log(__m256 v) {
  const __m256i bits = _mm256_castps_si256(v);
  // v = m 2^e with m in [0.5, 1).
  __m256 e =
      _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(126)));
  __m256 m = _mm256_castsi256_ps(_mm256_or_si256(
      _mm256_and_si256(bits, _mm256_set1_epi32(0x007fffff)), _mm256_set1_epi32(0x3f000000)));
  // For m < sqrt(1/2): e -= 1, x = 2m - 1; else x = m - 1.
  const __m256 small = _mm256_cmp_ps(m, _mm256_set1_ps(0.707106781186547524f), _CMP_LT_OQ);
  e = _mm256_sub_ps(e, _mm256_and_ps(small, _mm256_set1_ps(1.0f)));
  const __m256 x = _mm256_sub_ps(_mm256_add_ps(m, _mm256_and_ps(small, m)), _mm256_set1_ps(1.0f));
  const __m256 z = _mm256_mul_ps(x, x);
  __m256 y = _mm256_set1_ps(7.0376836292e-2f);
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(-1.1514610310e-1f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.1676998740e-1f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(-1.2420140846e-1f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.4249322787e-1f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(-1.6668057665e-1f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(2.0000714765e-1f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(-2.4999993993e-1f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(3.3333331174e-1f));
  y = _mm256_mul_ps(_mm256_mul_ps(y, x), z);
  y = _mm256_fmadd_ps(e, _mm256_set1_ps(-2.12194440e-4f), y);
  y = _mm256_fnmadd_ps(z, _mm256_set1_ps(0.5f), y);
  return _mm256_fmadd_ps(e, _mm256_set1_ps(0.693359375f), _mm256_add_ps(x, y));
}

// silu(v) = v / (1 + exp(-v)).  PyTorch: F.silu(v)
JAMBA_AVX2 inline __m256 Silu(__m256 v) {
  return _mm256_div_ps(
      v, _mm256_add_ps(_mm256_set1_ps(1.0f), Exp(_mm256_sub_ps(_mm256_setzero_ps(), v))));
}

// softplus(v) = log1p(exp(v)), and v above torch's threshold 20.
// log1p(e) = log(u) * e / (u - 1) with u = 1 + e stays accurate for tiny e.
JAMBA_AVX2 inline __m256 Softplus(__m256 v) {
  const __m256 e = Exp(_mm256_min_ps(v, _mm256_set1_ps(20.0f)));
  const __m256 u = _mm256_add_ps(_mm256_set1_ps(1.0f), e);
  const __m256 d = _mm256_sub_ps(u, _mm256_set1_ps(1.0f));
  const __m256 tiny = _mm256_cmp_ps(d, _mm256_setzero_ps(), _CMP_EQ_OQ);
  const __m256 lp = _mm256_blendv_ps(_mm256_div_ps(_mm256_mul_ps(Log(u), e), d), e, tiny);
  return _mm256_blendv_ps(lp, v, _mm256_cmp_ps(v, _mm256_set1_ps(20.0f), _CMP_GT_OQ));
}

}  // namespace jamba::kernels::avx2
