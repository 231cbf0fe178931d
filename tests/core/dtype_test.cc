// Tests of the dtype table and the scalar conversions: bf16 round to nearest
// even, and every f16 bit pattern (subnormals, infinities, NaN).
#include "core/dtype.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "gtest/gtest.h"

namespace jamba {
namespace {

uint32_t Bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, sizeof(b));
  return b;
}

float FromBits(uint32_t b) {
  float f;
  std::memcpy(&f, &b, sizeof(f));
  return f;
}

TEST(DTypeTest, SizesAndNames) {
  EXPECT_EQ(DTypeSize(DType::kF32), 4u);
  EXPECT_EQ(DTypeSize(DType::kBF16), 2u);
  EXPECT_EQ(DTypeSize(DType::kF16), 2u);
  EXPECT_EQ(DTypeSize(DType::kI32), 4u);
  EXPECT_EQ(DTypeName(DType::kF32), "F32");
  EXPECT_EQ(DTypeName(DType::kBF16), "BF16");
  EXPECT_EQ(DTypeName(DType::kF16), "F16");
  EXPECT_EQ(DTypeName(DType::kI32), "I32");
}

TEST(Bf16Test, RoundingIsIdempotent) {
  for (float f : {0.0f, -0.0f, 1.0f, -2.5f, 0.15625f, 3.0e38f, 1.0e-38f}) {
    const float r = Bf16ToF32(F32ToBf16(Bf16ToF32(F32ToBf16(f))));
    EXPECT_EQ(Bits(r), Bits(Bf16ToF32(F32ToBf16(f)))) << f;
  }
  EXPECT_EQ(F32ToBf16(1.0f), 0x3f80);
  EXPECT_EQ(F32ToBf16(-2.0f), 0xc000);
  EXPECT_EQ(Bf16ToF32(0x3f80), 1.0f);
}

TEST(Bf16Test, RoundsToNearestEven) {
  // 1 + 2^-8 is halfway between 1 (even mantissa) and 1 + 2^-7: rounds down.
  EXPECT_EQ(F32ToBf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);
  // 1 + 3*2^-8 is halfway between 1 + 2^-7 (odd) and 1 + 2^-6: rounds up.
  EXPECT_EQ(F32ToBf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);
  // Just above and below the halfway point.
  EXPECT_EQ(F32ToBf16(FromBits(0x3f808001)), 0x3f81);
  EXPECT_EQ(F32ToBf16(FromBits(0x3f807fff)), 0x3f80);
  // Negative numbers round the same way on the magnitude.
  EXPECT_EQ(F32ToBf16(FromBits(0xbf818000)), 0xbf82);
  // Rounding up can carry into the exponent, and out of range becomes inf.
  EXPECT_EQ(F32ToBf16(FromBits(0x3fffffff)), 0x4000);
  EXPECT_EQ(F32ToBf16(std::numeric_limits<float>::max()), 0x7f80);
}

TEST(Bf16Test, SpecialValues) {
  EXPECT_EQ(F32ToBf16(std::numeric_limits<float>::infinity()), 0x7f80);
  EXPECT_EQ(F32ToBf16(-std::numeric_limits<float>::infinity()), 0xff80);
  EXPECT_TRUE(std::isnan(Bf16ToF32(F32ToBf16(std::numeric_limits<float>::quiet_NaN()))));
  // A NaN whose payload lives only in the low bits must not become inf.
  EXPECT_TRUE(std::isnan(Bf16ToF32(F32ToBf16(FromBits(0x7f800001)))));
  // The smallest f32 subnormal rounds to zero; a bf16 subnormal is exact.
  EXPECT_EQ(F32ToBf16(FromBits(0x00000001)), 0x0000);
  EXPECT_EQ(F32ToBf16(FromBits(0x00010000)), 0x0001);
}

// The value of an f16 bit pattern, computed independently in double.
double F16Reference(uint16_t v) {
  const double sign = (v & 0x8000) ? -1.0 : 1.0;
  const int exponent = (v >> 10) & 0x1f;
  const int mantissa = v & 0x3ff;
  if (exponent == 0) return sign * std::ldexp(mantissa, -24);
  if (exponent == 0x1f) {
    return mantissa == 0 ? sign * std::numeric_limits<double>::infinity()
                         : std::numeric_limits<double>::quiet_NaN();
  }
  return sign * std::ldexp(1024 + mantissa, exponent - 25);
}

TEST(F16Test, EveryBitPattern) {
  for (uint32_t v = 0; v <= 0xffff; ++v) {
    const float got = F16ToF32(static_cast<uint16_t>(v));
    const double want = F16Reference(static_cast<uint16_t>(v));
    if (std::isnan(want)) {
      ASSERT_TRUE(std::isnan(got)) << std::hex << v;
    } else {
      ASSERT_EQ(static_cast<double>(got), want) << std::hex << v;
      ASSERT_EQ(std::signbit(got), (v & 0x8000) != 0) << std::hex << v;
    }
  }
}

TEST(F16Test, NamedValues) {
  EXPECT_EQ(F16ToF32(0x3c00), 1.0f);
  EXPECT_EQ(F16ToF32(0xc000), -2.0f);
  EXPECT_EQ(F16ToF32(0x7bff), 65504.0f);
  EXPECT_EQ(F16ToF32(0x0400), std::ldexp(1.0f, -14));     // smallest normal
  EXPECT_EQ(F16ToF32(0x03ff), std::ldexp(1023.0f, -24));  // largest subnormal
  EXPECT_EQ(F16ToF32(0x0001), std::ldexp(1.0f, -24));     // smallest subnormal
  EXPECT_EQ(F16ToF32(0x7c00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(F16ToF32(0xfc00), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(F16ToF32(0x7e00)));
  EXPECT_TRUE(std::isnan(F16ToF32(0x7c01)));
  EXPECT_TRUE(std::signbit(F16ToF32(0x8000)));
}

}  // namespace
}  // namespace jamba
