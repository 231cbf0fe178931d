// Tensors on the wire: jamba.internal.v1.TensorProto holds a dtype, a shape
// and raw little-endian bytes. The encoder takes f32 host tensors and writes
// F32 or BF16 (rounded to nearest even); the decoder validates everything a
// hostile peer controls and returns an f32 host tensor. Thread-safe.
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/tensor.h"
#include "jamba/internal/v1/expert.pb.h"

namespace jamba::rpc {

using TensorProto = ::jamba::internal::v1::TensorProto;

// Upper bounds on decoded tensors; anything larger is rejected unread.
inline constexpr int64_t kMaxWireRows = int64_t{1} << 20;
inline constexpr int64_t kMaxWireCols = int64_t{1} << 20;

// True for the dtypes that may travel: F32 and BF16.
bool IsWireDType(DType dtype);
// REQUIRES: IsWireDType(dtype).
::jamba::internal::v1::DType ToProtoDType(DType dtype);
// InvalidArgument for DTYPE_UNSPECIFIED and unknown values.
absl::StatusOr<DType> FromProtoDType(int proto_dtype);
// "f32" or "bf16" (case-insensitive), as in a command-line flag.
absl::StatusOr<DType> ParseWireDType(absl::string_view name);

// out = x as `wire` bytes, shape [n, H].
// REQUIRES: x is an f32 host tensor of rank 2; IsWireDType(wire).
void EncodeTensor(const Tensor& x, DType wire, TensorProto* out);
// out = x[rows] as `wire` bytes, shape [rows.size(), H], without an
// intermediate copy. REQUIRES: as EncodeTensor; every row id in range.
void EncodeRows(const Tensor& x, absl::Span<const int32_t> rows, DType wire, TensorProto* out);

// The f32 host tensor [n, expected_cols] that `proto` carries. Rejects with
// InvalidArgument, naming the problem: unspecified or unknown dtype, rank
// other than 2, negative or oversize dimensions, a column count other than
// `expected_cols` (any count up to kMaxWireCols when expected_cols < 0), and
// a byte count other than numel * sizeof(dtype).
absl::StatusOr<Tensor> DecodeTensor(const TensorProto& proto, int64_t expected_cols);

}  // namespace jamba::rpc
