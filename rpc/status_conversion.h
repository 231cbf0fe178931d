// The gRPC edge of absl::Status: one converter pair used by every handler
// and client. Codes map 1:1 (absl::StatusCode and grpc::StatusCode share the
// google.rpc.Code numbering). Thread-safe (pure functions).
#pragma once

#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace jamba::rpc {

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

// A status from a google.rpc.Code number carried in a message field (e.g.
// ExpertResponse.error_code). Numbers outside [0, 16] become UNKNOWN, with
// the number kept in the message.
absl::Status StatusFromCode(int code, absl::string_view message);

}  // namespace jamba::rpc
