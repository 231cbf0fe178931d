// Software AVX512-BF16 for verification builds (cmake
// -DJAMBA_EMULATE_AVX512BF16=ON, scripts/emulate_avx512bf16.sh) on CPUs
// without it: force-included into kernels/cpu_fast/matmul_avx512bf16.cc
// only, it replaces the five AVX-512 intrinsics that file uses with plain
// C++ on GCC's generic vector types, so the tier's tiling, masks and hi/lo
// split run, and every test of the tier with them, on an AVX2 machine.
//
// vdpbf16ps as the Intel SDM defines it: per f32 lane i, the odd then the
// even bf16 pair's product (exact in f32) added with one rounding each to
// nearest even; bf16 inputs that are denormal read as zero and denormal
// sums are flushed to zero. Masked-out elements of a masked load are not
// read. Not a timing model: the tier's speed is not measured this way.
#pragma once

#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>

#include "core/dtype.h"

namespace jamba::emulated_avx512 {

// f flushed to zero when denormal (FTZ).
inline float Ftz(float f) {
  return std::fpclassify(f) == FP_SUBNORMAL ? std::copysign(0.0f, f) : f;
}

// A bf16 as f32, denormals as zero (DAZ).
inline float Bf16Daz(uint16_t b) { return Ftz(Bf16ToF32(b)); }

inline __m512 SetZeroPs() { return __m512{}; }

inline void StorePs(void* p, __m512 v) { std::memcpy(p, &v, sizeof(v)); }

inline __m512i LoaduSi512(const void* p) {
  __m512i v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

inline __m512i MaskzLoaduEpi16(__mmask32 mask, const void* p) {
  uint16_t lanes[32] = {};
  for (int i = 0; i < 32; ++i) {
    if ((mask >> i) & 1u) std::memcpy(&lanes[i], static_cast<const char*>(p) + 2 * i, 2);
  }
  __m512i v;
  std::memcpy(&v, lanes, sizeof(v));
  return v;
}

inline __m512 Dpbf16Ps(__m512 acc, __m512bh a, __m512bh b) {
  uint16_t av[32], bv[32];
  float out[16];
  std::memcpy(av, &a, sizeof(av));
  std::memcpy(bv, &b, sizeof(bv));
  std::memcpy(out, &acc, sizeof(out));
  for (int i = 0; i < 16; ++i) {
    for (const int e : {2 * i + 1, 2 * i}) {
      const float product = Bf16Daz(av[e]) * Bf16Daz(bv[e]);  // exact
      out[i] = Ftz(out[i] + product);
    }
  }
  std::memcpy(&acc, out, sizeof(out));
  return acc;
}

}  // namespace jamba::emulated_avx512

#define JAMBA_AVX512BF16
#define _mm512_setzero_ps() ::jamba::emulated_avx512::SetZeroPs()
#define _mm512_store_ps(p, v) ::jamba::emulated_avx512::StorePs(p, v)
#define _mm512_loadu_si512(p) ::jamba::emulated_avx512::LoaduSi512(p)
#define _mm512_maskz_loadu_epi16(m, p) ::jamba::emulated_avx512::MaskzLoaduEpi16(m, p)
#define _mm512_dpbf16_ps(acc, a, b) ::jamba::emulated_avx512::Dpbf16Ps(acc, a, b)
