// jamba-gemm-bench: GFLOP/s of y = x · wᵀ for the fast CPU MatMul (f32 and
// bf16 weights) and, when built with OpenBLAS, cblas_sgemm (f32 only), on
// ThreadPool::Default() / the OpenBLAS thread count. Prints one JSON object
// per line: {"impl", "M", "N", "K", "gflops", "seconds"} (best of --reps).
//
//   jamba-gemm-bench --shapes 1024x1024x1024,512x2048x512 --reps 5
//   JAMBA_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 jamba-gemm-bench --cpu_time
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "core/tensor.h"
#include "kernels/cpu_fast/fast_cpu_backend.h"

#if defined(JAMBA_HAVE_OPENBLAS)
#include <cblas.h>
#endif

ABSL_FLAG(std::string, shapes, "1024x1024x1024", "comma-separated MxNxK");
ABSL_FLAG(int, reps, 5, "timed repetitions per case (the best is printed)");
ABSL_FLAG(bool, cpu_time, false,
          "time with the process's CPU clock instead of the wall clock; with one thread this "
          "measures the kernel even on a loaded machine (time spent descheduled is not counted)");

namespace jamba {
namespace {

// Seconds on the wall clock, or of process CPU time with --cpu_time.
double Now() {
  if (absl::GetFlag(FLAGS_cpu_time)) {
    timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Best time of `reps` calls of fn, after one warm-up call.
double BestSeconds(int reps, const std::function<void()>& fn) {
  fn();
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const double start = Now();
    fn();
    best = std::min(best, Now() - start);
  }
  return best;
}

void Print(const char* impl, int64_t M, int64_t N, int64_t K, double seconds) {
  std::printf(
      "{\"impl\": \"%s\", \"M\": %lld, \"N\": %lld, \"K\": %lld, \"gflops\": %.1f, "
      "\"seconds\": %.6f}\n",
      impl, static_cast<long long>(M), static_cast<long long>(N), static_cast<long long>(K),
      2.0 * M * N * K / seconds * 1e-9, seconds);
  std::fflush(stdout);
}

void RunShape(int64_t M, int64_t N, int64_t K, int reps) {
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  Tensor x = Tensor::Zeros(DType::kF32, {M, K});
  Tensor w = Tensor::Zeros(DType::kF32, {N, K});
  Tensor w_bf16 = Tensor::Zeros(DType::kBF16, {N, K});
  Tensor y = Tensor::Zeros(DType::kF32, {M, N});
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = dist(rng);
  for (int64_t i = 0; i < w.numel(); ++i) {
    w.data<float>()[i] = dist(rng);
    static_cast<uint16_t*>(w_bf16.raw_data())[i] = F32ToBf16(w.data<float>()[i]);
  }
  std::unique_ptr<kernels::Backend> fast = kernels::CreateFastCpuBackend();
  Print("fast_f32", M, N, K, BestSeconds(reps, [&] { fast->MatMul(x, w, nullptr, &y); }));
  Print("fast_bf16", M, N, K, BestSeconds(reps, [&] { fast->MatMul(x, w_bf16, nullptr, &y); }));
#if defined(JAMBA_HAVE_OPENBLAS)
  Print("openblas_sgemm", M, N, K, BestSeconds(reps, [&] {
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, x.data<float>(), K,
                      w.data<float>(), K, 0.0f, y.data<float>(), N);
        }));
#endif
}

}  // namespace
}  // namespace jamba

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  for (absl::string_view shape : absl::StrSplit(absl::GetFlag(FLAGS_shapes), ',')) {
    std::vector<std::string> dims = absl::StrSplit(shape, 'x');
    int64_t m = 0, n = 0, k = 0;
    if (dims.size() != 3 || !absl::SimpleAtoi(dims[0], &m) || !absl::SimpleAtoi(dims[1], &n) ||
        !absl::SimpleAtoi(dims[2], &k)) {
      std::fprintf(stderr, "jamba-gemm-bench: bad shape '%s' (want MxNxK)\n",
                   std::string(shape).c_str());
      return 1;
    }
    jamba::RunShape(m, n, k, absl::GetFlag(FLAGS_reps));
  }
  return 0;
}
