// CPU feature detection for the fast CPU backend.
#include "kernels/cpu_fast/isa.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace jamba::kernels {
namespace {

CpuIsa HardwareIsa() {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512bf16")) {
    return CpuIsa::kAvx512Bf16;
  }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
#if defined(JAMBA_EMULATE_AVX512BF16)
    return CpuIsa::kAvx512Bf16;  // a verification build: the tier runs in software
#else
    return CpuIsa::kAvx2;
#endif
  }
#endif
  return CpuIsa::kPortable;
}

}  // namespace

CpuIsa DetectCpuIsa() {
  CpuIsa isa = HardwareIsa();
  if (const char* cap = std::getenv("JAMBA_CPU_ISA")) {
    CpuIsa limit = isa;
    if (std::strcmp(cap, "portable") == 0) limit = CpuIsa::kPortable;
    if (std::strcmp(cap, "avx2") == 0) limit = CpuIsa::kAvx2;
    isa = std::min(isa, limit);
  }
  return isa;
}

const char* CpuIsaName(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::kPortable:
      return "portable";
    case CpuIsa::kAvx2:
      return "avx2";
    case CpuIsa::kAvx512Bf16:
      return "avx512bf16";
  }
  return "unknown";
}

}  // namespace jamba::kernels
