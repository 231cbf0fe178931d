#include "rpc/tensor_codec.h"

#include <cstring>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "core/check.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "the wire format is little-endian; add byte swapping for this host");

namespace jamba::rpc {
namespace {

namespace pb = ::jamba::internal::v1;

void CheckEncodable(const Tensor& x, DType wire) {
  JAMBA_CHECK(IsWireDType(wire)) << "wire dtype " << DTypeName(wire);
  JAMBA_CHECK(x.device() == Device::kCpu && x.dtype() == DType::kF32 && x.rank() == 2)
      << "EncodeTensor wants an f32 host [n, H] tensor, got " << x.DebugString();
}

// Writes `n` rows of `cols` floats, row i taken from row_ptr(i), as `wire`.
template <typename RowPtr>
void WriteRows(int64_t n, int64_t cols, DType wire, RowPtr row_ptr, TensorProto* out) {
  out->set_dtype(ToProtoDType(wire));
  out->clear_shape();
  out->add_shape(n);
  out->add_shape(cols);
  const size_t row_bytes = static_cast<size_t>(cols) * DTypeSize(wire);
  std::string* data = out->mutable_data();
  data->resize(static_cast<size_t>(n) * row_bytes);
  char* dst = data->data();
  for (int64_t i = 0; i < n; ++i, dst += row_bytes) {
    const float* src = row_ptr(i);
    if (wire == DType::kF32) {
      std::memcpy(dst, src, row_bytes);
      continue;
    }
    for (int64_t c = 0; c < cols; ++c) {
      const uint16_t v = F32ToBf16(src[c]);
      std::memcpy(dst + 2 * c, &v, sizeof(v));
    }
  }
}

}  // namespace

bool IsWireDType(DType dtype) { return dtype == DType::kF32 || dtype == DType::kBF16; }

pb::DType ToProtoDType(DType dtype) {
  JAMBA_CHECK(IsWireDType(dtype)) << "no wire dtype for " << DTypeName(dtype);
  return dtype == DType::kF32 ? pb::DTYPE_F32 : pb::DTYPE_BF16;
}

absl::StatusOr<DType> FromProtoDType(int proto_dtype) {
  switch (proto_dtype) {
    case pb::DTYPE_F32:
      return DType::kF32;
    case pb::DTYPE_BF16:
      return DType::kBF16;
    case pb::DTYPE_UNSPECIFIED:
      return absl::InvalidArgumentError("tensor dtype is unspecified");
    default:
      return absl::InvalidArgumentError(absl::StrCat("tensor dtype ", proto_dtype, " is unknown"));
  }
}

absl::StatusOr<DType> ParseWireDType(absl::string_view name) {
  const std::string lower = absl::AsciiStrToLower(name);
  if (lower == "f32" || lower == "float32") return DType::kF32;
  if (lower == "bf16" || lower == "bfloat16") return DType::kBF16;
  return absl::InvalidArgumentError(
      absl::StrCat("wire dtype '", name, "' is not one of f32, bf16"));
}

void EncodeTensor(const Tensor& x, DType wire, TensorProto* out) {
  CheckEncodable(x, wire);
  const int64_t cols = x.dim(1);
  const float* base = x.data<float>();
  WriteRows(
      x.dim(0), cols, wire, [&](int64_t i) { return base + i * cols; }, out);
}

void EncodeRows(const Tensor& x, absl::Span<const int32_t> rows, DType wire, TensorProto* out) {
  CheckEncodable(x, wire);
  const int64_t cols = x.dim(1);
  const int64_t num_rows = x.dim(0);
  for (int32_t r : rows) JAMBA_CHECK(r >= 0 && r < num_rows) << "row " << r << " of " << num_rows;
  const float* base = x.data<float>();
  WriteRows(
      static_cast<int64_t>(rows.size()), cols, wire,
      [&](int64_t i) { return base + rows[i] * cols; }, out);
}

absl::StatusOr<Tensor> DecodeTensor(const TensorProto& proto, int64_t expected_cols) {
  absl::StatusOr<DType> dtype = FromProtoDType(proto.dtype());
  if (!dtype.ok()) return dtype.status();
  if (proto.shape_size() != 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor has rank ", proto.shape_size(), ", want 2 ([rows, cols])"));
  }
  const int64_t rows = proto.shape(0);
  const int64_t cols = proto.shape(1);
  if (rows < 0 || cols < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor shape [", rows, ", ", cols, "] has a negative dimension"));
  }
  if (rows > kMaxWireRows) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor has ", rows, " rows, more than the limit of ", kMaxWireRows));
  }
  if (expected_cols >= 0 && cols != expected_cols) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor has ", cols, " columns, want ", expected_cols));
  }
  if (cols > kMaxWireCols) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor has ", cols, " columns, more than the limit of ", kMaxWireCols));
  }
  const int64_t elem_size = static_cast<int64_t>(DTypeSize(*dtype));
  int64_t numel = 0, nbytes = 0;
  if (__builtin_mul_overflow(rows, cols, &numel) ||
      __builtin_mul_overflow(numel, elem_size, &nbytes)) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor shape [", rows, ", ", cols, "] overflows its byte count"));
  }
  if (static_cast<uint64_t>(nbytes) != proto.data().size()) {
    return absl::InvalidArgumentError(absl::StrCat("tensor [", rows, ", ", cols, "] ",
                                                   DTypeName(*dtype), " needs ", nbytes,
                                                   " bytes of data, got ", proto.data().size()));
  }
  Tensor out = Tensor::Zeros(DType::kF32, {rows, cols});
  if (numel == 0) return out;
  float* dst = out.data<float>();
  const char* src = proto.data().data();
  if (*dtype == DType::kF32) {
    std::memcpy(dst, src, static_cast<size_t>(nbytes));
  } else {
    for (int64_t i = 0; i < numel; ++i) {
      uint16_t v;
      std::memcpy(&v, src + 2 * i, sizeof(v));
      dst[i] = Bf16ToF32(v);
    }
  }
  return out;
}

}  // namespace jamba::rpc
