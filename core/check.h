// JAMBA_CHECK: invariant checks that abort with file:line and a message.
//
// Use for programmer errors (shape mismatches between ops, broken internal
// invariants). Anything the outside world can cause (bad files, bad requests)
// must return absl::Status instead. Checks stay on in release builds.
#pragma once

#include <sstream>

namespace jamba::internal {

// Collects a failure message and aborts the process when destroyed.
class CheckFailure {
 public:
  CheckFailure(const char* file, int line, const char* condition);
  [[noreturn]] ~CheckFailure();
  std::ostream& stream() { return stream_; }

 private:
  std::ostringstream stream_;
};

// Lets `JAMBA_CHECK(c) << x` compile as a void expression.
struct Voidify {
  void operator&(std::ostream&) {}
};

}  // namespace jamba::internal

#define JAMBA_CHECK(condition)                 \
  (condition) ? (void)0                        \
              : ::jamba::internal::Voidify() & \
                    ::jamba::internal::CheckFailure(__FILE__, __LINE__, #condition).stream()

#define JAMBA_CHECK_EQ(a, b) JAMBA_CHECK((a) == (b)) << (a) << " vs " << (b) << ": "
#define JAMBA_CHECK_LE(a, b) JAMBA_CHECK((a) <= (b)) << (a) << " vs " << (b) << ": "
#define JAMBA_CHECK_LT(a, b) JAMBA_CHECK((a) < (b)) << (a) << " vs " << (b) << ": "
