// RETURN_IF_ERROR / ASSIGN_OR_RETURN for absl::Status and absl::StatusOr.
// Debian 12's abseil (20220623) has no status macros of its own.
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define JAMBA_STATUS_CONCAT_INNER(a, b) a##b
#define JAMBA_STATUS_CONCAT(a, b) JAMBA_STATUS_CONCAT_INNER(a, b)

#define RETURN_IF_ERROR(expr)                      \
  do {                                             \
    ::absl::Status jamba_status_ = (expr);         \
    if (!jamba_status_.ok()) return jamba_status_; \
  } while (0)

#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL(JAMBA_STATUS_CONCAT(jamba_statusor_, __LINE__), lhs, expr)

#define ASSIGN_OR_RETURN_IMPL(statusor, lhs, expr) \
  auto statusor = (expr);                          \
  if (!statusor.ok()) return statusor.status();    \
  lhs = std::move(statusor).value()
