// Element types of tensors and the scalar conversions between them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "absl/strings/string_view.h"

namespace jamba {

// kI8 holds quantised weights (with a separate f32 scale per output row).
enum class DType : uint8_t { kF32, kBF16, kF16, kI32, kI8 };

// Bytes per element.
size_t DTypeSize(DType dtype);
// "F32", "BF16", "F16", "I32", "I8" (the safetensors spelling).
absl::string_view DTypeName(DType dtype);

// bf16 is the upper half of an IEEE float32.
inline float Bf16ToF32(uint16_t v) {
  uint32_t bits = static_cast<uint32_t>(v) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

// Round to nearest even, as torch's .to(torch.bfloat16) does; NaN stays NaN.
inline uint16_t F32ToBf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof(bits));
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

// IEEE binary16 to float32, including subnormals, infinities and NaN.
float F16ToF32(uint16_t v);

}  // namespace jamba
