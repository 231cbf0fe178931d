// Helpers for the backend op tests: the list of backends every op test runs
// on, a fixture that moves tensors to and from the backend, random inputs
// and comparison against double-precision references.
// Adding a backend to every op test is one line in TestBackends().
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/backend.h"

namespace jamba::kernels::testing {

struct BackendFactory {
  std::string name;
  // Returns nullptr when this machine cannot run the backend (tests skip).
  std::function<std::unique_ptr<Backend>()> create;
  // rtol = atol of MatMul with BF16 weights; backends that round activations
  // (vdpbf16ps on a hi/lo bf16 split of x) are looser than f32.
  double bf16_matmul_tolerance = 1e-5;
  // The same for F16 weights (CUDA's fast mode rounds x to f16 there).
  double f16_matmul_tolerance = 1e-5;
  // Whether MatMul rows are bit-identical whatever the batch size; cuBLAS
  // picks its kernels by shape, so there they agree up to rounding only.
  bool batch_invariant_matmul = true;
};

// gtest prints a parameter as its name.
inline void PrintTo(const BackendFactory& factory, std::ostream* os) { *os << factory.name; }

// Every backend built into this binary.
std::vector<BackendFactory> TestBackends();

// gtest parameter name: the factory's name.
std::string BackendName(const ::testing::TestParamInfo<BackendFactory>& info);

// Fixture for TEST_P op tests; instantiate with
//   INSTANTIATE_TEST_SUITE_P(Backends, MyTest,
//   ::testing::ValuesIn(TestBackends()), BackendName);
class BackendTest : public ::testing::TestWithParam<BackendFactory> {
 protected:
  void SetUp() override;

  Backend& backend() { return *backend_; }
  // A backend tensor holding a copy of the host tensor `host`.
  Tensor ToDevice(const Tensor& host);
  // A zero-filled backend tensor.
  Tensor NewDevice(DType dtype, Shape shape);
  // A host copy of a backend tensor (synchronises first).
  Tensor ToHost(const Tensor& t);

 private:
  std::unique_ptr<Backend> backend_;
};

// Host f32 tensor with elements uniform in [lo, hi).
Tensor RandomF32(Shape shape, std::mt19937* rng, float lo = -1.0f, float hi = 1.0f);
// Host BF16 tensor: uniform [lo, hi) values rounded to bf16.
Tensor RandomBF16(Shape shape, std::mt19937* rng, float lo = -1.0f, float hi = 1.0f);
// Host F16 tensor of random normal f16 values of magnitude about
// [2^-6, 2^2), plus a few subnormals.
Tensor RandomF16(Shape shape, std::mt19937* rng);
// Host I32 tensor from values.
Tensor I32Tensor(const std::vector<int32_t>& values, Shape shape);
// Host F32 tensor from values.
Tensor F32Tensor(const std::vector<float>& values, Shape shape);

// Every element of a host F32/BF16/F16/I32/I8 tensor, as double.
std::vector<double> ToDoubles(const Tensor& host);

// EXPECTs |actual[i] - expected[i]| <= atol + rtol * |expected[i]| for all i
// (actual: host f32), reporting the worst element.
void ExpectAllClose(const Tensor& actual, const std::vector<double>& expected, double rtol,
                    double atol);

// Per-dtype tolerances for comparing f32 results with double references.
constexpr double kRtolF32 = 1e-5;
constexpr double kAtolF32 = 1e-5;

}  // namespace jamba::kernels::testing
