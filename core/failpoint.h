// Failpoints: named places where an end-to-end test makes a real process
// fail, to check its fatal-error handling (exit status, health) without a
// stand-in component. Off unless the environment variable JAMBA_FAILPOINTS
// names them, comma-separated: "name" fires at every evaluation,
// "name@N" from the N-th evaluation on (1-based). Other names are ignored.
#pragma once

#include "absl/strings/string_view.h"

namespace jamba {

// Counts one evaluation of failpoint `name`; true when it fires.
bool FailpointFires(absl::string_view name);

}  // namespace jamba
