// Tests of the small ops: Allocate, Copy, Embedding, Add, SiluMul,
// GatherRows and ScatterAddRows, each against a double reference.
#include <cmath>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "tests/kernels/backend_test_util.h"

namespace jamba::kernels::testing {
namespace {

class MiscOpsTest : public BackendTest {};

TEST_P(MiscOpsTest, AllocateIsZeroFilled) {
  for (DType dtype : {DType::kF32, DType::kBF16, DType::kF16, DType::kI32}) {
    const Tensor t = NewDevice(dtype, {3, 17});
    EXPECT_EQ(t.dtype(), dtype);
    EXPECT_EQ(t.shape(), (Shape{3, 17}));
    EXPECT_EQ(t.device(), backend().device());
    ExpectAllClose(ToHost(t).Reshape({51}).Clone(), std::vector<double>(51, 0.0), 0.0, 0.0);
  }
  EXPECT_TRUE(backend().Synchronize().ok());
}

TEST_P(MiscOpsTest, AllocateRejectsBadShapes) {
  EXPECT_EQ(backend().Allocate(DType::kF32, {2, -1}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(backend().Allocate(DType::kF32, {int64_t{1} << 40, int64_t{1} << 40}).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(backend().AllocateUninitialized(DType::kF32, {2, -1}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(backend()
                .AllocateUninitialized(DType::kF32, {int64_t{1} << 40, int64_t{1} << 40})
                .status()
                .code(),
            absl::StatusCode::kResourceExhausted);
}

TEST_P(MiscOpsTest, UninitializedAllocationTakesAWholeWrite) {
  std::mt19937 rng(5);
  const Tensor x = RandomBF16({4, 33}, &rng);
  absl::StatusOr<Tensor> t = backend().AllocateUninitialized(DType::kBF16, {4, 33});
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->shape(), (Shape{4, 33}));
  EXPECT_EQ(t->device(), backend().device());
  backend().Copy(ToDevice(x), &*t);
  ExpectAllClose(ToHost(*t), ToDoubles(x), 0.0, 0.0);
}

TEST_P(MiscOpsTest, CopyRoundTrips) {
  std::mt19937 rng(71);
  const Tensor x = RandomBF16({5, 9}, &rng);
  Tensor a = ToDevice(x);
  Tensor b = NewDevice(DType::kBF16, {45});  // same size, other shape
  backend().Copy(a, &b);
  ExpectAllClose(ToHost(b).Reshape({5, 9}), ToDoubles(x), 0.0, 0.0);
}

// Every finite f16 value survives f32 -> f16 exactly, midpoints between
// neighbours round to the even one, and bf16/f16 widen to f32 exactly.
TEST_P(MiscOpsTest, ConvertRoundsToNearestEven) {
  std::vector<float> values, expected_f16;
  for (uint32_t bits = 0; bits < 0x7c00u; ++bits) {  // +finite f16, with subnormals
    for (const uint32_t sign : {0u, 0x8000u}) {
      values.push_back(F16ToF32(static_cast<uint16_t>(bits | sign)));
      expected_f16.push_back(values.back());
      if (bits + 1 < 0x7c00u) {  // the midpoint to the next value rounds to the even one
        const float lo = F16ToF32(static_cast<uint16_t>(bits | sign));
        const float hi = F16ToF32(static_cast<uint16_t>((bits + 1) | sign));
        values.push_back(0.5f * (lo + hi));
        expected_f16.push_back((bits & 1) == 0 ? lo : hi);
      }
    }
  }
  const int64_t n = static_cast<int64_t>(values.size());
  const Tensor src = ToDevice(F32Tensor(values, {n}));
  Tensor f16 = NewDevice(DType::kF16, {n}), bf16 = NewDevice(DType::kBF16, {n});
  backend().Convert(src, &f16);
  backend().Convert(src, &bf16);
  ExpectAllClose(ToHost(f16), std::vector<double>(expected_f16.begin(), expected_f16.end()), 0, 0);
  std::vector<double> expected_bf16;
  for (float v : values) expected_bf16.push_back(Bf16ToF32(F32ToBf16(v)));
  ExpectAllClose(ToHost(bf16), expected_bf16, 0, 0);
  // Widening back is exact.
  Tensor back = NewDevice(DType::kF32, {n});
  backend().Convert(bf16, &back);
  ExpectAllClose(ToHost(back), expected_bf16, 0, 0);
  backend().Convert(f16, &back);
  ExpectAllClose(ToHost(back), std::vector<double>(expected_f16.begin(), expected_f16.end()), 0, 0);
}

TEST_P(MiscOpsTest, EmbeddingAllTableDtypes) {
  std::mt19937 rng(72);
  const Tensor ids = I32Tensor({3, 0, 10, 3, 7}, {5});
  for (const Tensor& table :
       {RandomF32({11, 13}, &rng), RandomBF16({11, 13}, &rng), RandomF16({11, 13}, &rng)}) {
    SCOPED_TRACE(table.DebugString());
    Tensor y = NewDevice(DType::kF32, {5, 13});
    backend().Embedding(ToDevice(table), ToDevice(ids), &y);
    const std::vector<double> t = ToDoubles(table);
    std::vector<double> ref;
    for (int32_t id : {3, 0, 10, 3, 7})
      ref.insert(ref.end(), t.begin() + id * 13, t.begin() + (id + 1) * 13);
    ExpectAllClose(ToHost(y), ref, 0.0, 0.0);  // decoding is exact
  }
}

TEST_P(MiscOpsTest, AddAndSiluMul) {
  std::mt19937 rng(73);
  const Tensor a = RandomF32({7, 31}, &rng, -6.0f, 6.0f), b = RandomF32({7, 31}, &rng);
  const std::vector<double> av = ToDoubles(a), bv = ToDoubles(b);
  std::vector<double> sum(av.size()), gated(av.size());
  for (size_t i = 0; i < av.size(); ++i) {
    sum[i] = av[i] + bv[i];
    gated[i] = av[i] / (1.0 + std::exp(-av[i])) * bv[i];
  }
  Tensor y = NewDevice(DType::kF32, {7, 31});
  backend().Add(ToDevice(a), ToDevice(b), &y);
  ExpectAllClose(ToHost(y), sum, kRtolF32, 1e-6);
  backend().SiluMul(ToDevice(a), ToDevice(b), &y);
  ExpectAllClose(ToHost(y), gated, kRtolF32, 1e-6);
  // In place: y aliases the first, then the second input.
  Tensor ad = ToDevice(a), bd = ToDevice(b);
  backend().Add(ad, bd, &ad);
  ExpectAllClose(ToHost(ad), sum, kRtolF32, 1e-6);
  ad = ToDevice(a);
  backend().SiluMul(ad, bd, &bd);
  ExpectAllClose(ToHost(bd), gated, kRtolF32, 1e-6);
}

// Each row's result is bit-identical whether it is alone or among others,
// whatever the split across threads or vector lengths (a row's width is odd
// here, so rows start at every offset in a vector): batch invariance.
TEST_P(MiscOpsTest, SiluMulRowsDoNotDependOnTheBatch) {
  std::mt19937 rng(77);
  for (const int64_t width : {13, 1001}) {
    SCOPED_TRACE(width);
    const int64_t rows = 40;
    const Tensor a = RandomF32({rows, width}, &rng, -6.0f, 6.0f),
                 b = RandomF32({rows, width}, &rng);
    Tensor all = NewDevice(DType::kF32, {rows, width});
    backend().SiluMul(ToDevice(a), ToDevice(b), &all);
    const std::vector<double> batched = ToDoubles(ToHost(all));
    for (int64_t r = 0; r < rows; ++r) {
      Tensor one = NewDevice(DType::kF32, {1, width});
      backend().SiluMul(ToDevice(a.Slice(r, r + 1).Clone()), ToDevice(b.Slice(r, r + 1).Clone()),
                        &one);
      ExpectAllClose(
          ToHost(one),
          std::vector<double>(batched.begin() + r * width, batched.begin() + (r + 1) * width), 0.0,
          0.0);
    }
  }
}

TEST_P(MiscOpsTest, GatherRows) {
  std::mt19937 rng(74);
  const Tensor x = RandomF32({6, 10}, &rng);
  const std::vector<int32_t> rows = {5, 0, 0, 3};
  Tensor y = NewDevice(DType::kF32, {4, 10});
  backend().GatherRows(ToDevice(x), ToDevice(I32Tensor(rows, {4})), &y);
  const std::vector<double> xv = ToDoubles(x);
  std::vector<double> ref;
  for (int32_t r : rows) ref.insert(ref.end(), xv.begin() + r * 10, xv.begin() + (r + 1) * 10);
  ExpectAllClose(ToHost(y), ref, 0.0, 0.0);
}

TEST_P(MiscOpsTest, ScatterAddRows) {
  std::mt19937 rng(75);
  const Tensor x = RandomF32({5, 12}, &rng), y0 = RandomF32({4, 12}, &rng);
  const std::vector<int32_t> rows = {2, 0, 2, 3, 2};
  const std::vector<float> scale = {0.5f, -1.0f, 0.25f, 2.0f, 1.0f};
  std::vector<double> ref = ToDoubles(y0);
  const std::vector<double> xv = ToDoubles(x);
  for (size_t i = 0; i < rows.size(); ++i) {
    for (int64_t c = 0; c < 12; ++c) ref[rows[i] * 12 + c] += scale[i] * xv[i * 12 + c];
  }
  Tensor y = ToDevice(y0);
  backend().ScatterAddRows(ToDevice(x), ToDevice(I32Tensor(rows, {5})),
                           ToDevice(F32Tensor(scale, {5})), &y);
  ExpectAllClose(ToHost(y), ref, kRtolF32, 1e-6);
}

// Duplicates add in index order: ((0 + 1e8) + 1) - 1e8 is 0 in f32, while
// any other order gives 1 or 2.
TEST_P(MiscOpsTest, ScatterAddRowsAddsInOrder) {
  const Tensor x = F32Tensor({1e8f, 1e8f, 1.0f, 1.0f, -1e8f, -1e8f}, {3, 2});
  Tensor y = NewDevice(DType::kF32, {2, 2});
  backend().ScatterAddRows(ToDevice(x), ToDevice(I32Tensor({1, 1, 1}, {3})),
                           ToDevice(F32Tensor({1.0f, 1.0f, 1.0f}, {3})), &y);
  ExpectAllClose(ToHost(y), {0.0, 0.0, 0.0, 0.0}, 0.0, 0.0);
}

INSTANTIATE_TEST_SUITE_P(Backends, MiscOpsTest, ::testing::ValuesIn(TestBackends()), BackendName);

}  // namespace
}  // namespace jamba::kernels::testing
