// Run-time CPU feature tiers of the fast CPU backend. The binary is built for
// the baseline x86-64 target; faster kernels carry target attributes and are
// chosen here from __builtin_cpu_supports, so it runs on any x86-64 CPU.
// Thread-safe (pure functions).
#pragma once

namespace jamba::kernels {

enum class CpuIsa {
  kPortable,    // plain C++ (the reference kernels)
  kAvx2,        // AVX2 + FMA, f32 accumulation
  kAvx512Bf16,  // AVX-512 F/BW + AVX512_BF16 (vdpbf16ps) for bf16 weights
};

// The best tier this CPU supports, capped by the environment variable
// JAMBA_CPU_ISA=portable|avx2|avx512bf16 when it is set (never raised).
CpuIsa DetectCpuIsa();

// "portable", "avx2" or "avx512bf16".
const char* CpuIsaName(CpuIsa isa);

}  // namespace jamba::kernels
