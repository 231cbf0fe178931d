// GroupedExpertMlp tests: every routed row through its expert's gated MLP
// against a double reference, for F32, BF16 and I8 (per-row scale) experts,
// sizes on and off the 16-byte vector paths, an expert that is not hosted,
// routes beyond CudaBackend's device path, row independence (a row's
// output is bit-identical whichever rows share the call), and I8 experts of
// odd sizes with 1, 2, 8 and 33 routes each.
#include <algorithm>
#include <cmath>
#include <random>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "gtest/gtest.h"
#include "tests/kernels/backend_test_util.h"

namespace jamba::kernels::testing {
namespace {

// Host weights of one expert and its double-precision forward.
struct HostExpert {
  Tensor gate, up, down;                    // [I,H], [I,H], [H,I]
  Tensor gate_scale, up_scale, down_scale;  // I8 only

  // y = down · (silu(gate · x) ⊙ (up · x)) in double.
  std::vector<double> Forward(const std::vector<double>& x) const {
    const int64_t I = gate.dim(0), H = gate.dim(1);
    const std::vector<double> g = ToDoubles(gate), u = ToDoubles(up), d = ToDoubles(down);
    auto scale = [](const Tensor& s, int64_t i) {
      return s.defined() ? static_cast<double>(s.data<float>()[i]) : 1.0;
    };
    std::vector<double> a(I), y(H);
    for (int64_t i = 0; i < I; ++i) {
      double gi = 0, ui = 0;
      for (int64_t h = 0; h < H; ++h) {
        gi += g[i * H + h] * x[h];
        ui += u[i * H + h] * x[h];
      }
      gi *= scale(gate_scale, i);
      ui *= scale(up_scale, i);
      a[i] = gi / (1.0 + std::exp(-gi)) * ui;
    }
    for (int64_t h = 0; h < H; ++h) {
      double acc = 0;
      for (int64_t i = 0; i < I; ++i) acc += d[h * I + i] * a[i];
      y[h] = acc * scale(down_scale, h);
    }
    return y;
  }
};

// Symmetric per-row int8: scale = max|w_row| / 127, q = round(w / scale).
void Quantize(const Tensor& w, Tensor* q, Tensor* scale) {
  const int64_t R = w.dim(0), C = w.dim(1);
  *q = Tensor::Zeros(DType::kI8, {R, C});
  *scale = Tensor::Zeros(DType::kF32, {R});
  const float* wd = w.data<float>();
  for (int64_t r = 0; r < R; ++r) {
    float amax = 0;
    for (int64_t c = 0; c < C; ++c) amax = std::max(amax, std::abs(wd[r * C + c]));
    const float s = amax > 0 ? amax / 127.0f : 1.0f;
    scale->data<float>()[r] = s;
    for (int64_t c = 0; c < C; ++c) {
      q->data<int8_t>()[r * C + c] = static_cast<int8_t>(std::lrint(wd[r * C + c] / s));
    }
  }
}

HostExpert RandomExpert(DType dtype, int64_t H, int64_t I, std::mt19937* rng) {
  const float a = 1.0f / std::sqrt(static_cast<float>(H)),
              b = 1.0f / std::sqrt(static_cast<float>(I));
  HostExpert e;
  if (dtype == DType::kBF16) {
    e.gate = RandomBF16({I, H}, rng, -a, a);
    e.up = RandomBF16({I, H}, rng, -a, a);
    e.down = RandomBF16({H, I}, rng, -b, b);
    return e;
  }
  e.gate = RandomF32({I, H}, rng, -a, a);
  e.up = RandomF32({I, H}, rng, -a, a);
  e.down = RandomF32({H, I}, rng, -b, b);
  if (dtype == DType::kI8) {
    Quantize(Tensor(e.gate), &e.gate, &e.gate_scale);
    Quantize(Tensor(e.up), &e.up, &e.up_scale);
    Quantize(Tensor(e.down), &e.down, &e.down_scale);
  }
  return e;
}

struct Case {
  DType dtype;
  int64_t H, I;
};

class GroupedExpertMlpTest : public BackendTest {
 protected:
  // Experts 0..E-1 on the backend; `missing` gets no weights.
  void Load(const Case& c, int E, int missing, std::mt19937* rng) {
    host_.clear();
    device_.assign(E, ExpertMlpWeights());
    for (int e = 0; e < E; ++e) {
      host_.push_back(RandomExpert(c.dtype, c.H, c.I, rng));
      if (e == missing) continue;
      const HostExpert& h = host_.back();
      ExpertMlpWeights& d = device_[e];
      d.gate = ToDevice(h.gate);
      d.up = ToDevice(h.up);
      d.down = ToDevice(h.down);
      if (c.dtype == DType::kI8) {
        d.gate_scale = ToDevice(h.gate_scale);
        d.up_scale = ToDevice(h.up_scale);
        d.down_scale = ToDevice(h.down_scale);
      }
    }
  }

  Tensor Run(const Tensor& x, const std::vector<int32_t>& rows,
             const std::vector<int32_t>& experts) {
    const int64_t n = static_cast<int64_t>(rows.size());
    GroupedExpertMlpParams p;
    p.x = ToDevice(x);
    p.rows = ToDevice(I32Tensor(rows, {n}));
    p.experts = ToDevice(I32Tensor(experts, {n}));
    p.weights = &device_;
    p.y = NewDevice(DType::kF32, {n, x.dim(1)});
    backend().GroupedExpertMlp(p);
    return ToHost(p.y);
  }

  std::vector<double> Reference(const Tensor& x, const std::vector<int32_t>& rows,
                                const std::vector<int32_t>& experts) {
    const int64_t H = x.dim(1);
    const std::vector<double> xd = ToDoubles(x);
    std::vector<double> y;
    for (size_t r = 0; r < rows.size(); ++r) {
      const std::vector<double> xr(xd.begin() + rows[r] * H, xd.begin() + (rows[r] + 1) * H);
      const std::vector<double> yr = host_[experts[r]].Forward(xr);
      y.insert(y.end(), yr.begin(), yr.end());
    }
    return y;
  }

  std::vector<HostExpert> host_;
  std::vector<ExpertMlpWeights> device_;
};

TEST_P(GroupedExpertMlpTest, MatchesReference) {
  std::mt19937 rng(11);
  // Vector paths along H and I, H only (I8 needs multiples of 16), neither.
  for (const Case& c :
       {Case{DType::kF32, 64, 96}, Case{DType::kBF16, 64, 96}, Case{DType::kI8, 64, 96},
        Case{DType::kI8, 48, 40}, Case{DType::kBF16, 48, 40}, Case{DType::kF32, 37, 23},
        Case{DType::kI8, 37, 23}}) {
    SCOPED_TRACE(::testing::Message() << DTypeName(c.dtype) << " H " << c.H << " I " << c.I);
    Load(c, 5, /*missing=*/3, &rng);
    const Tensor x = RandomF32({6, c.H}, &rng, -2.0f, 2.0f);
    // Expert 0 gets 11 routes (more than one 8-row pass), row 0 twice.
    std::vector<int32_t> rows = {0, 1, 2, 3, 4, 5, 0, 2, 5, 1, 3, 4, 5, 0, 2, 1, 4};
    std::vector<int32_t> experts = {0, 2, 4, 0, 1, 2, 2, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    // Beyond CUDA's device path cuBLAS may round activations (and I8
    // weights) to bf16.
    const double tol = std::max(1e-4, GetParam().bf16_matmul_tolerance);
    const double wide = c.dtype == DType::kI8 ? std::max(tol, 1e-2) : tol;
    ExpectAllClose(Run(x, rows, experts), Reference(x, rows, experts), wide, wide);
    // A decode-sized call (CUDA's device path): 3 routes.
    const std::vector<int32_t> few_rows = {4, 0, 4}, few_experts = {2, 0, 4};
    ExpectAllClose(Run(x, few_rows, few_experts), Reference(x, few_rows, few_experts), 1e-4, 1e-5);
  }
}

TEST_P(GroupedExpertMlpTest, RowsAreIndependentOfTheirCompany) {
  std::mt19937 rng(12);
  for (const DType dtype : {DType::kBF16, DType::kI8}) {
    SCOPED_TRACE(DTypeName(dtype));
    Load({dtype, 64, 96}, 4, -1, &rng);
    const Tensor x = RandomF32({5, 64}, &rng, -2.0f, 2.0f);
    // Few enough routes for CUDA's device path (beyond it cuBLAS picks
    // kernels by shape).
    const std::vector<int32_t> rows = {0, 1, 2, 4};
    const std::vector<int32_t> experts = {0, 0, 3, 3};
    const Tensor all = Run(x, rows, experts);
    for (size_t r = 0; r < rows.size(); ++r) {
      const Tensor one = Run(x, {rows[r]}, {experts[r]});
      for (int64_t h = 0; h < 64; ++h) {
        ASSERT_EQ(one.data<float>()[h], all.data<float>()[r * 64 + h]) << "route " << r;
      }
    }
  }
}

TEST_P(GroupedExpertMlpTest, PrefillSizedBatches) {
  std::mt19937 rng(13);
  for (const DType dtype : {DType::kBF16, DType::kI8}) {
    SCOPED_TRACE(DTypeName(dtype));
    Load({dtype, 64, 96}, 6, -1, &rng);
    const int64_t T = 90;
    const Tensor x = RandomF32({T, 64}, &rng, -2.0f, 2.0f);
    std::vector<int32_t> rows, experts;
    std::uniform_int_distribution<int32_t> pick(0, 5);
    for (int32_t t = 0; t < T; ++t) {
      for (int j = 0; j < 2; ++j) {
        rows.push_back(t);
        experts.push_back(pick(rng));
      }
    }
    // Beyond CUDA's device path, activations and I8 weights may be rounded
    // to bf16 for cuBLAS.
    const double tol = std::max(GetParam().bf16_matmul_tolerance, dtype == DType::kI8 ? 1e-2 : 0.0);
    ExpectAllClose(Run(x, rows, experts), Reference(x, rows, experts), tol, tol);
  }
}

// Expert weights prepared for the backend's MatMul (PrepareMatMulWeight, as
// the model loads them) give the same bits as row-major ones, for few and
// many routes per expert.
TEST_P(GroupedExpertMlpTest, PreparedWeightsGiveTheSameBits) {
  std::mt19937 rng(15);
  for (const DType dtype : {DType::kF32, DType::kBF16}) {
    SCOPED_TRACE(DTypeName(dtype));
    Load({dtype, 64, 96}, 3, -1, &rng);
    const Tensor x = RandomF32({40, 64}, &rng, -2.0f, 2.0f);
    std::vector<int32_t> rows, experts;
    for (int32_t t = 0; t < 40; ++t) {
      rows.push_back(t);
      experts.push_back(t < 36 ? 1 : t % 3);  // expert 1 gets 37 routes, the others 1 or 2
    }
    const Tensor before = Run(x, rows, experts);
    for (ExpertMlpWeights& w : device_) {
      for (Tensor* m : {&w.gate, &w.up, &w.down}) {
        absl::StatusOr<Tensor> prepared = backend().PrepareMatMulWeight(*m);
        ASSERT_TRUE(prepared.ok()) << prepared.status();
        *m = *prepared;
      }
    }
    const Tensor after = Run(x, rows, experts);
    for (int64_t i = 0; i < before.numel(); ++i) {
      ASSERT_EQ(before.data<float>()[i], after.data<float>()[i]) << i;
    }
  }
}

TEST_P(GroupedExpertMlpTest, Int8OddSizesAndRowCounts) {
  std::mt19937 rng(15);
  // H and I off every vector width; experts 0..3 get 1, 2, 8 and 33 routes
  // (decode tiles, a full row tile, and row tiles with a remainder).
  for (const Case& c : {Case{DType::kI8, 37, 23}, Case{DType::kI8, 21, 50}}) {
    SCOPED_TRACE(::testing::Message() << "H " << c.H << " I " << c.I);
    Load(c, 4, -1, &rng);
    const int64_t T = 40;
    const Tensor x = RandomF32({T, c.H}, &rng, -2.0f, 2.0f);
    std::vector<int32_t> rows, experts;
    std::uniform_int_distribution<int32_t> pick_row(0, T - 1);
    for (const auto& [expert, count] : {std::pair{3, 33}, {0, 1}, {2, 8}, {1, 2}}) {
      for (int j = 0; j < count; ++j) {
        rows.push_back(pick_row(rng));
        experts.push_back(expert);
      }
    }
    std::shuffle(experts.begin(), experts.end(), rng);
    const double tol = std::max(1e-4, GetParam().bf16_matmul_tolerance);
    const Tensor all = Run(x, rows, experts);
    ExpectAllClose(all, Reference(x, rows, experts), std::max(tol, 1e-2), std::max(tol, 1e-2));
    // Host backends: each route alone gives the same bits. (CUDA picks its
    // kernels by the number of routes.)
    if (backend().device() == Device::kCuda) continue;
    for (size_t r = 0; r < rows.size(); ++r) {
      const Tensor one = Run(x, {rows[r]}, {experts[r]});
      for (int64_t h = 0; h < c.H; ++h) {
        ASSERT_EQ(one.data<float>()[h], all.data<float>()[r * c.H + h]) << "route " << r;
      }
    }
  }
}

TEST_P(GroupedExpertMlpTest, DeviceFlagsAnExpertWithoutWeights) {
  if (backend().device() != Device::kCuda) GTEST_SKIP() << "host backends CHECK instead";
  std::mt19937 rng(14);
  Load({DType::kBF16, 64, 96}, 3, /*missing=*/1, &rng);
  const Tensor x = RandomF32({2, 64}, &rng);
  GroupedExpertMlpParams p;
  p.x = ToDevice(x);
  p.rows = ToDevice(I32Tensor({0, 1}, {2}));
  p.experts = ToDevice(I32Tensor({0, 1}, {2}));
  p.weights = &device_;
  p.y = NewDevice(DType::kF32, {2, 64});
  backend().GroupedExpertMlp(p);
  const absl::Status status = backend().Synchronize();
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal);
  EXPECT_NE(status.message().find("GroupedExpertMlp"), std::string::npos) << status;
  EXPECT_TRUE(backend().Synchronize().ok()) << "the error is reported once";
}

INSTANTIATE_TEST_SUITE_P(Backends, GroupedExpertMlpTest, ::testing::ValuesIn(TestBackends()),
                         BackendName);

}  // namespace
}  // namespace jamba::kernels::testing
