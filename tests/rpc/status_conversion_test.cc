// Tests for ToGrpcStatus / FromGrpcStatus / StatusFromCode.
#include "rpc/status_conversion.h"

#include "gtest/gtest.h"

namespace jamba::rpc {
namespace {

TEST(StatusConversionTest, EveryCodeRoundTrips) {
  for (int code = 1; code <= 16; ++code) {
    const absl::Status status(static_cast<absl::StatusCode>(code), "what went wrong");
    const grpc::Status grpc_status = ToGrpcStatus(status);
    EXPECT_EQ(static_cast<int>(grpc_status.error_code()), code);
    EXPECT_EQ(grpc_status.error_message(), "what went wrong");
    EXPECT_EQ(FromGrpcStatus(grpc_status), status);
  }
}

TEST(StatusConversionTest, OkStaysOk) {
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
  EXPECT_TRUE(FromGrpcStatus(grpc::Status::OK).ok());
}

TEST(StatusConversionTest, NamedCodesMatch) {
  EXPECT_EQ(ToGrpcStatus(absl::NotFoundError("x")).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(ToGrpcStatus(absl::UnavailableError("x")).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(FromGrpcStatus(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "late")),
            absl::DeadlineExceededError("late"));
}

TEST(StatusConversionTest, StatusFromCode) {
  EXPECT_TRUE(StatusFromCode(0, "ignored").ok());
  EXPECT_EQ(StatusFromCode(5, "gone"), absl::NotFoundError("gone"));
  const absl::Status odd = StatusFromCode(99, "huh");
  EXPECT_EQ(odd.code(), absl::StatusCode::kUnknown);
  EXPECT_NE(odd.message().find("99"), absl::string_view::npos);
  EXPECT_EQ(StatusFromCode(-3, "neg").code(), absl::StatusCode::kUnknown);
}

}  // namespace
}  // namespace jamba::rpc
