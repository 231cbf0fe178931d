// ThreadSanitizer annotations for the orderings gRPC guarantees: whatever a
// thread did before starting an operation on a reactor (StartCall,
// StartRead, StartWrite, StartWritesDone, Finish, TryCancel) or on a
// completion queue (Read, Write, Finish...) happens before that operation's
// reaction or completion, and every reaction happens before OnDone. gRPC core hands operations
// between threads with its own atomics, which TSan does not see when gRPC is not built with
// -fsanitize=thread (the distribution's is not), so without these it
// reports every reactor field handed over that way. No-ops in other builds.
//
// Usage: GrpcOpStarts(this) before each such call; a GrpcReaction at the top
// of each reaction except OnDone, which starts with GrpcReactionStarts(this)
// (it may delete the reactor); GrpcReactionStarts(this) first in each
// completion handler of a completion-queue stream. A unary call's callback: GrpcOpStarts(state)
// before the call, GrpcReactionStarts(state) first in the callback.
// Concurrent reactions (a read's and a write's) are ordered by these as they
// happen to run, so TSan can miss a race between them that the run did not
// interleave.
#pragma once

#include "absl/base/config.h"

#ifdef ABSL_HAVE_THREAD_SANITIZER
#include <sanitizer/tsan_interface.h>
#endif

namespace jamba::rpc {

inline void GrpcOpStarts(const void* reactor) {
#ifdef ABSL_HAVE_THREAD_SANITIZER
  __tsan_release(const_cast<void*>(reactor));
#else
  static_cast<void>(reactor);
#endif
}

inline void GrpcReactionStarts(const void* reactor) {
#ifdef ABSL_HAVE_THREAD_SANITIZER
  __tsan_acquire(const_cast<void*>(reactor));
#else
  static_cast<void>(reactor);
#endif
}

// Scoped: a reaction sees what preceded its operation, and OnDone sees the
// reaction.
class GrpcReaction {
 public:
  explicit GrpcReaction(const void* reactor) : reactor_(reactor) { GrpcReactionStarts(reactor_); }
  ~GrpcReaction() { GrpcOpStarts(reactor_); }
  GrpcReaction(const GrpcReaction&) = delete;
  GrpcReaction& operator=(const GrpcReaction&) = delete;

 private:
  const void* const reactor_;
};

}  // namespace jamba::rpc
