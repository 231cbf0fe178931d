#include "bench/compare/gemm_probe.h"

#include <algorithm>
#include <chrono>
#include <random>
#include <utility>

#include "core/check.h"
#include "core/dtype.h"

namespace jamba {

MatMulOperands RandomMatMulOperands(int64_t M, int64_t N, int64_t K) {
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  MatMulOperands o{Tensor::Zeros(DType::kF32, {M, K}), Tensor::Zeros(DType::kF32, {N, K}),
                   Tensor::Zeros(DType::kBF16, {N, K})};
  for (int64_t i = 0; i < o.x.numel(); ++i) o.x.data<float>()[i] = dist(rng);
  for (int64_t i = 0; i < o.w.numel(); ++i) {
    o.w.data<float>()[i] = dist(rng);
    static_cast<uint16_t*>(o.w_bf16.raw_data())[i] = F32ToBf16(o.w.data<float>()[i]);
  }
  return o;
}

GemmProbe::GemmProbe(kernels::Backend* backend, int64_t size)
    : backend_(backend), size_(size), y_(Tensor::Zeros(DType::kF32, {size, size})) {
  MatMulOperands o = RandomMatMulOperands(size, size, size);
  x_ = std::move(o.x);
  absl::StatusOr<Tensor> w = backend->PrepareMatMulWeight(o.w);
  absl::StatusOr<Tensor> w_bf16 = backend->PrepareMatMulWeight(o.w_bf16);
  JAMBA_CHECK(w.ok() && w_bf16.ok()) << "GemmProbe: cannot prepare the probe's weights";
  w_ = *std::move(w);
  w_bf16_ = *std::move(w_bf16);
}

double GemmProbe::BestGflops(int calls) {
  double best_s = 1e30;
  for (const Tensor* w : {&w_, &w_bf16_}) {
    backend_->MatMul(x_, *w, nullptr, &y_);
    for (int c = 0; c < calls; ++c) {
      const auto start = std::chrono::steady_clock::now();
      backend_->MatMul(x_, *w, nullptr, &y_);
      best_s = std::min(
          best_s, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
  }
  return 2.0 * size_ * size_ * size_ / best_s * 1e-9;
}

}  // namespace jamba
