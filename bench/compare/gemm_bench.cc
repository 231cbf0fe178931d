// jamba-gemm-bench: GFLOP/s of y = x · wᵀ for the fast CPU MatMul (f32 and
// bf16 weights) and, when built with OpenBLAS, cblas_sgemm (f32 only), on
// ThreadPool::Default() / the OpenBLAS thread count; the fast MatMul also on
// weights prepared as the model loads them (weight panels), where they fit. Prints one JSON object
// per line: {"impl", "M", "N", "K", "gflops", "seconds"} (best of --reps).
// With --cold_mib, every timed call cycles over copies of w totalling that
// many MiB, so the weights come from memory as in decode, and each line also
// gives "gbs", the weight bytes read per second.
//
//   jamba-gemm-bench --shapes 1024x1024x1024,512x2048x512 --reps 5
//   JAMBA_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 jamba-gemm-bench --cpu_time
//   jamba-gemm-bench --shapes 1x2048x512,1x32000x256 --cold_mib 512
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "bench/compare/gemm_probe.h"
#include "core/check.h"
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
ABSL_FLAG(int, cold_mib, 0,
          "if > 0, cycle over copies of w totalling this many MiB (weights from memory, not "
          "cache) and also print the weights' GB/s");

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

// `seconds` per call; `w_bytes` > 0 adds the weights' read rate.
void Print(const char* impl, int64_t M, int64_t N, int64_t K, double seconds, size_t w_bytes) {
  std::printf(
      "{\"impl\": \"%s\", \"M\": %lld, \"N\": %lld, \"K\": %lld, \"gflops\": %.1f, "
      "\"seconds\": %.6f",
      impl, static_cast<long long>(M), static_cast<long long>(N), static_cast<long long>(K),
      2.0 * M * N * K / seconds * 1e-9, seconds);
  if (w_bytes > 0) std::printf(", \"cold\": true, \"gbs\": %.1f", w_bytes / seconds * 1e-9);
  std::printf("}\n");
  std::fflush(stdout);
}

// Seconds per call of fn(w) over `ws` in turn (best of `reps` passes).
double PerCall(int reps, const std::vector<Tensor>& ws,
               const std::function<void(const Tensor&)>& fn) {
  const double pass = BestSeconds(reps, [&] {
    for (const Tensor& w : ws) fn(w);
  });
  return pass / static_cast<double>(ws.size());
}

// `copies` tensors holding w's values.
std::vector<Tensor> Copies(const Tensor& w, int64_t copies) {
  std::vector<Tensor> ws = {w};
  for (int64_t c = 1; c < copies; ++c) {
    ws.push_back(Tensor::Zeros(w.dtype(), w.shape()));
    std::memcpy(ws.back().raw_data(), w.raw_data(), w.nbytes());
  }
  return ws;
}

void RunShape(int64_t M, int64_t N, int64_t K, int reps) {
  const MatMulOperands o = RandomMatMulOperands(M, N, K);
  const Tensor &x = o.x, &w = o.w, &w_bf16 = o.w_bf16;
  Tensor y = Tensor::Zeros(DType::kF32, {M, N});
  const int64_t cold_bytes = int64_t{absl::GetFlag(FLAGS_cold_mib)} << 20;
  auto copies = [&](const Tensor& t) {
    return Copies(t, cold_bytes > 0 ? std::max<int64_t>(1, cold_bytes / t.nbytes()) : 1);
  };
  const std::vector<Tensor> ws = copies(w), ws_bf16 = copies(w_bf16);
  const size_t f32_bytes = cold_bytes > 0 ? w.nbytes() : 0;
  const size_t bf16_bytes = cold_bytes > 0 ? w_bf16.nbytes() : 0;
  std::unique_ptr<kernels::Backend> fast = kernels::CreateFastCpuBackend();
  auto fast_call = [&](const Tensor& wi) { fast->MatMul(x, wi, nullptr, &y); };
  Print("fast_f32", M, N, K, PerCall(reps, ws, fast_call), f32_bytes);
  Print("fast_bf16", M, N, K, PerCall(reps, ws_bf16, fast_call), bf16_bytes);
  // The same weights as the model loads them (weight panels where they fit).
  auto prepared = [&](const std::vector<Tensor>& from) {
    std::vector<Tensor> out;
    for (const Tensor& t : from) {
      absl::StatusOr<Tensor> p = fast->PrepareMatMulWeight(t);
      JAMBA_CHECK(p.ok()) << p.status();
      out.push_back(*p);
    }
    return out;
  };
  const std::vector<Tensor> panels = prepared(ws), panels_bf16 = prepared(ws_bf16);
  if (panels[0].layout() == Layout::kBackendPacked) {
    Print("fast_f32_panels", M, N, K, PerCall(reps, panels, fast_call), f32_bytes);
    Print("fast_bf16_panels", M, N, K, PerCall(reps, panels_bf16, fast_call), bf16_bytes);
  }
#if defined(JAMBA_HAVE_OPENBLAS)
  Print("openblas_sgemm", M, N, K,
        PerCall(reps, ws,
                [&](const Tensor& wi) {
                  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f,
                              x.data<float>(), K, wi.data<float>(), K, 0.0f, y.data<float>(), N);
                }),
        f32_bytes);
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
