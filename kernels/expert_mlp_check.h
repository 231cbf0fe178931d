// Argument checks of Backend::GroupedExpertMlp shared by every backend:
// shapes and dtypes of x, rows, experts, y and each defined expert's
// weights (and scales for I8). Out-of-range row and expert indices are the
// backends' own concern (host backends CHECK them, devices flag them).
#pragma once

#include "kernels/params.h"

namespace jamba::kernels {

// CHECKs p; returns the hidden size H. `op` prefixes failure messages.
int64_t CheckGroupedExpertMlp(const GroupedExpertMlpParams& p, const char* op);

// True when the expert's weights are I8 (and carry scales).
inline bool IsInt8Expert(const ExpertMlpWeights& w) { return w.gate.dtype() == DType::kI8; }

}  // namespace jamba::kernels
