// Backend list, fixture and comparison helpers for the backend op tests.
// To run every op test on a new backend, add it to TestBackends().
#include "tests/kernels/backend_test_util.h"

#include <cmath>
#include <cstring>
#include <utility>

#include "core/dtype.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/cpu_fast/fast_cpu_backend.h"
#if defined(JAMBA_WITH_CUDA)
#include "kernels/cuda/cuda_backend.h"
#endif

namespace jamba::kernels::testing {

namespace {

// The fast CPU backend at a given tier, or null when this CPU lacks it.
std::unique_ptr<Backend> FastCpuBackendFor(CpuIsa isa) {
  if (DetectCpuIsa() < isa) return nullptr;
  return std::make_unique<FastCpuBackend>(isa);
}

#if defined(JAMBA_WITH_CUDA)
// A CudaBackend in `mode`, or null (the tests skip) when no device answers.
std::function<std::unique_ptr<Backend>()> CudaBackendIn(CudaMatMulMode mode) {
  return [mode]() -> std::unique_ptr<Backend> {
    CudaBackendOptions options;
    options.matmul = mode;
    absl::StatusOr<std::unique_ptr<CudaBackend>> b = CudaBackend::Create(options);
    if (!b.ok()) return nullptr;
    return std::move(b).value();
  };
}
#endif

}  // namespace

std::vector<BackendFactory> TestBackends() {
  return {
    {"Cpu", [] { return CreateCpuBackend(); }},
        {"CpuFast", [] { return CreateFastCpuBackend(); },
         DetectCpuIsa() == CpuIsa::kAvx512Bf16 ? 2e-3 : 1e-5},
        {"CpuFastAvx2", [] { return FastCpuBackendFor(CpuIsa::kAvx2); }},
        {"CpuFastAvx512Bf16", [] { return FastCpuBackendFor(CpuIsa::kAvx512Bf16); }, 2e-3},
#if defined(JAMBA_WITH_CUDA)
        {"Cuda", CudaBackendIn(CudaMatMulMode::kBf16), 1e-1, 5e-2, false},
        {"CudaF32", CudaBackendIn(CudaMatMulMode::kF32), 1e-5, 1e-5, false},
#endif
  };
}

std::string BackendName(const ::testing::TestParamInfo<BackendFactory>& info) {
  return info.param.name;
}

void BackendTest::SetUp() {
  backend_ = GetParam().create();
  if (backend_ == nullptr) GTEST_SKIP() << GetParam().name << " backend unavailable here";
}

Tensor BackendTest::ToDevice(const Tensor& host) {
  Tensor t = NewDevice(host.dtype(), host.shape());
  backend_->Copy(host, &t);
  return t;
}

Tensor BackendTest::NewDevice(DType dtype, Shape shape) {
  absl::StatusOr<Tensor> t = backend_->Allocate(dtype, std::move(shape));
  JAMBA_CHECK(t.ok()) << t.status().ToString();
  return *std::move(t);
}

Tensor BackendTest::ToHost(const Tensor& t) {
  Tensor host = Tensor::Zeros(t.dtype(), t.shape());
  backend_->Copy(t, &host);
  const absl::Status status = backend_->Synchronize();
  EXPECT_TRUE(status.ok()) << status;
  return host;
}

Tensor RandomF32(Shape shape, std::mt19937* rng, float lo, float hi) {
  Tensor t = Tensor::Zeros(DType::kF32, std::move(shape));
  std::uniform_real_distribution<float> dist(lo, hi);
  float* d = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) d[i] = dist(*rng);
  return t;
}

Tensor RandomBF16(Shape shape, std::mt19937* rng, float lo, float hi) {
  Tensor t = Tensor::Zeros(DType::kBF16, std::move(shape));
  std::uniform_real_distribution<float> dist(lo, hi);
  uint16_t* d = static_cast<uint16_t*>(t.raw_data());
  for (int64_t i = 0; i < t.numel(); ++i) d[i] = F32ToBf16(dist(*rng));
  return t;
}

Tensor RandomF16(Shape shape, std::mt19937* rng) {
  Tensor t = Tensor::Zeros(DType::kF16, std::move(shape));
  std::uniform_int_distribution<uint32_t> bits(0, 0xffffffffu);
  uint16_t* d = static_cast<uint16_t*>(t.raw_data());
  for (int64_t i = 0; i < t.numel(); ++i) {
    const uint32_t r = bits(*rng);
    const uint32_t sign = (r >> 31) << 15;
    const uint32_t mantissa = r & 0x3ffu;
    // Biased exponent 9..16 (2^-6 .. 2^1), or 0 (subnormal) one time in 16.
    const uint32_t exponent = ((r >> 10) & 0xfu) == 0 ? 0 : 9 + ((r >> 14) & 0x7u);
    d[i] = static_cast<uint16_t>(sign | exponent << 10 | mantissa);
  }
  return t;
}

Tensor I32Tensor(const std::vector<int32_t>& values, Shape shape) {
  Tensor t = Tensor::Zeros(DType::kI32, std::move(shape));
  JAMBA_CHECK_EQ(t.numel(), static_cast<int64_t>(values.size()));
  std::memcpy(t.raw_data(), values.data(), t.nbytes());
  return t;
}

Tensor F32Tensor(const std::vector<float>& values, Shape shape) {
  Tensor t = Tensor::Zeros(DType::kF32, std::move(shape));
  JAMBA_CHECK_EQ(t.numel(), static_cast<int64_t>(values.size()));
  std::memcpy(t.raw_data(), values.data(), t.nbytes());
  return t;
}

std::vector<double> ToDoubles(const Tensor& host) {
  std::vector<double> out(static_cast<size_t>(host.numel()));
  const void* raw = host.raw_data();
  for (size_t i = 0; i < out.size(); ++i) {
    switch (host.dtype()) {
      case DType::kF32:
        out[i] = static_cast<const float*>(raw)[i];
        break;
      case DType::kBF16:
        out[i] = Bf16ToF32(static_cast<const uint16_t*>(raw)[i]);
        break;
      case DType::kF16:
        out[i] = F16ToF32(static_cast<const uint16_t*>(raw)[i]);
        break;
      case DType::kI32:
        out[i] = static_cast<const int32_t*>(raw)[i];
        break;
      case DType::kI8:
        out[i] = static_cast<const int8_t*>(raw)[i];
        break;
    }
  }
  return out;
}

void ExpectAllClose(const Tensor& actual, const std::vector<double>& expected, double rtol,
                    double atol) {
  ASSERT_EQ(actual.numel(), static_cast<int64_t>(expected.size())) << actual.DebugString();
  const std::vector<double> a = ToDoubles(actual);
  int64_t bad = 0;
  int64_t worst = -1;
  double worst_excess = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double err = std::abs(a[i] - expected[i]);
    const double excess = err - (atol + rtol * std::abs(expected[i]));
    if (!(excess <= 0.0)) {  // also catches NaN
      ++bad;
      if (worst < 0 || !(excess <= worst_excess)) {
        worst = static_cast<int64_t>(i);
        worst_excess = excess;
      }
    }
  }
  EXPECT_EQ(bad, 0) << bad << " of " << a.size() << " elements of " << actual.DebugString()
                    << " differ; worst at flat index " << worst << ": "
                    << (worst >= 0 ? a[worst] : 0.0) << " vs expected "
                    << (worst >= 0 ? expected[worst] : 0.0);
}

}  // namespace jamba::kernels::testing
