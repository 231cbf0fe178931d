// Tests for the TensorProto codec: exact F32 round trips, BF16 rounding,
// and rejection of every malformed tensor a peer can send.
#include "rpc/tensor_codec.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace jamba::rpc {
namespace {

namespace pb = ::jamba::internal::v1;
using ::testing::HasSubstr;

Tensor RandomRows(int64_t n, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 3.0f);
  Tensor t = Tensor::Zeros(DType::kF32, {n, cols});
  for (int64_t i = 0; i < n * cols; ++i) t.data<float>()[i] = dist(rng);
  return t;
}

TensorProto Proto(int dtype, std::vector<int64_t> shape, size_t bytes) {
  TensorProto p;
  p.set_dtype(static_cast<pb::DType>(dtype));
  for (int64_t d : shape) p.add_shape(d);
  p.set_data(std::string(bytes, '\0'));
  return p;
}

void ExpectRejected(const TensorProto& proto, int64_t cols, const std::string& needle) {
  absl::StatusOr<Tensor> t = DecodeTensor(proto, cols);
  ASSERT_FALSE(t.ok()) << "accepted " << proto.ShortDebugString();
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(t.status().message()), HasSubstr(needle));
}

TEST(TensorCodecTest, F32RoundTripIsBitExact) {
  Tensor x = RandomRows(7, 72, 1);
  x.data<float>()[3] = std::numeric_limits<float>::denorm_min();
  x.data<float>()[4] = -0.0f;
  x.data<float>()[5] = std::numeric_limits<float>::infinity();
  TensorProto proto;
  EncodeTensor(x, DType::kF32, &proto);
  EXPECT_EQ(proto.dtype(), pb::DTYPE_F32);
  EXPECT_EQ(proto.data().size(), 7u * 72 * 4);
  absl::StatusOr<Tensor> y = DecodeTensor(proto, 72);
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_EQ(y->shape(), (Shape{7, 72}));
  EXPECT_EQ(std::memcmp(x.raw_data(), y->raw_data(), x.nbytes()), 0);
}

TEST(TensorCodecTest, Bf16RoundsToNearest) {
  Tensor x = RandomRows(5, 64, 2);
  TensorProto proto;
  EncodeTensor(x, DType::kBF16, &proto);
  EXPECT_EQ(proto.dtype(), pb::DTYPE_BF16);
  EXPECT_EQ(proto.data().size(), 5u * 64 * 2);
  absl::StatusOr<Tensor> y = DecodeTensor(proto, 64);
  ASSERT_TRUE(y.ok()) << y.status();
  for (int64_t i = 0; i < x.numel(); ++i) {
    const float a = x.data<float>()[i], b = y->data<float>()[i];
    EXPECT_EQ(b, Bf16ToF32(F32ToBf16(a)));
    EXPECT_LE(std::fabs(a - b), std::fabs(a) * (1.0f / 256)) << i;
  }
}

TEST(TensorCodecTest, EncodeRowsGathers) {
  Tensor x = RandomRows(6, 8, 3);
  const std::vector<int32_t> rows = {5, 0, 3, 3};
  TensorProto proto;
  EncodeRows(x, rows, DType::kF32, &proto);
  absl::StatusOr<Tensor> y = DecodeTensor(proto, 8);
  ASSERT_TRUE(y.ok()) << y.status();
  ASSERT_EQ(y->dim(0), 4);
  for (size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(std::memcmp(y->data<float>() + i * 8, x.data<float>() + rows[i] * 8, 32), 0);
  }
}

TEST(TensorCodecTest, ZeroRowsAreFine) {
  TensorProto proto;
  EncodeTensor(Tensor::Zeros(DType::kF32, {0, 16}), DType::kF32, &proto);
  absl::StatusOr<Tensor> y = DecodeTensor(proto, 16);
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_EQ(y->shape(), (Shape{0, 16}));
}

TEST(TensorCodecTest, AnyColumnCountWhenNotExpected) {
  absl::StatusOr<Tensor> y = DecodeTensor(Proto(pb::DTYPE_F32, {2, 3}, 24), -1);
  ASSERT_TRUE(y.ok()) << y.status();
  EXPECT_EQ(y->shape(), (Shape{2, 3}));
}

TEST(TensorCodecTest, RejectsBadDtypes) {
  ExpectRejected(Proto(pb::DTYPE_UNSPECIFIED, {2, 4}, 32), 4, "unspecified");
  ExpectRejected(Proto(7, {2, 4}, 32), 4, "dtype 7 is unknown");
  ExpectRejected(Proto(-1, {2, 4}, 32), 4, "unknown");
}

TEST(TensorCodecTest, RejectsBadShapes) {
  ExpectRejected(Proto(pb::DTYPE_F32, {8}, 32), 4, "rank 1");
  ExpectRejected(Proto(pb::DTYPE_F32, {1, 2, 4}, 32), 4, "rank 3");
  ExpectRejected(Proto(pb::DTYPE_F32, {}, 0), 4, "rank 0");
  ExpectRejected(Proto(pb::DTYPE_F32, {-2, 4}, 32), 4, "negative");
  ExpectRejected(Proto(pb::DTYPE_F32, {2, -4}, 32), -1, "negative");
  ExpectRejected(Proto(pb::DTYPE_F32, {2, 5}, 40), 4, "5 columns, want 4");
}

TEST(TensorCodecTest, RejectsAbsurdSizes) {
  ExpectRejected(Proto(pb::DTYPE_F32, {kMaxWireRows + 1, 4}, 0), 4, "more than the limit");
  ExpectRejected(Proto(pb::DTYPE_F32, {int64_t{1} << 62, 4}, 0), 4, "rows");
  ExpectRejected(Proto(pb::DTYPE_F32, {1, int64_t{1} << 62}, 0), -1, "columns");
  ExpectRejected(Proto(pb::DTYPE_BF16, {INT64_MAX, INT64_MAX}, 0), -1, "limit");
}

TEST(TensorCodecTest, RejectsWrongByteCounts) {
  ExpectRejected(Proto(pb::DTYPE_F32, {2, 4}, 31), 4, "needs 32 bytes of data, got 31");
  ExpectRejected(Proto(pb::DTYPE_F32, {2, 4}, 33), 4, "got 33");
  ExpectRejected(Proto(pb::DTYPE_BF16, {2, 4}, 32), 4, "needs 16 bytes");
  ExpectRejected(Proto(pb::DTYPE_F32, {0, 4}, 4), 4, "needs 0 bytes");
}

// Random bytes parsed as a TensorProto must never crash the decoder.
TEST(TensorCodecTest, SurvivesRandomInput) {
  std::mt19937 rng(7);
  int accepted = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    TensorProto proto;
    if (iter % 2 == 0) {
      std::string bytes(rng() % 64, '\0');
      for (char& c : bytes) c = static_cast<char>(rng());
      if (!proto.ParseFromString(bytes)) continue;
    } else {
      proto.set_dtype(static_cast<pb::DType>(static_cast<int>(rng() % 4)));
      const int rank = static_cast<int>(rng() % 4);
      for (int d = 0; d < rank; ++d) proto.add_shape(static_cast<int64_t>(rng() % 6) - 1);
      proto.set_data(std::string(rng() % 100, 'x'));
    }
    absl::StatusOr<Tensor> t = DecodeTensor(proto, (iter % 3 == 0) ? -1 : 4);
    if (t.ok()) {
      ++accepted;
      EXPECT_EQ(t->nbytes(), proto.data().size() * (proto.dtype() == pb::DTYPE_BF16 ? 2 : 1));
    }
  }
  EXPECT_GT(accepted, 0);
}

TEST(TensorCodecTest, WireDTypes) {
  EXPECT_EQ(*ParseWireDType("f32"), DType::kF32);
  EXPECT_EQ(*ParseWireDType("BF16"), DType::kBF16);
  EXPECT_FALSE(ParseWireDType("f16").ok());
  EXPECT_TRUE(IsWireDType(DType::kBF16));
  EXPECT_FALSE(IsWireDType(DType::kI32));
  EXPECT_EQ(ToProtoDType(DType::kF32), pb::DTYPE_F32);
  EXPECT_EQ(*FromProtoDType(pb::DTYPE_BF16), DType::kBF16);
}

}  // namespace
}  // namespace jamba::rpc
