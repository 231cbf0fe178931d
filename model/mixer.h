// Mixer: the token-mixing half of a Jamba layer (Mamba or attention), run
// over a batch of sequences whose rows are stacked in one activation matrix.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "core/tensor.h"
#include "kernels/backend.h"
#include "model/sequence_state.h"

namespace jamba::model {

// Rows [begin, end) of the batch belong to `state`, continuing it at
// position state->length().
struct SequenceRows {
  int64_t begin = 0;
  int64_t end = 0;
  SequenceState* state = nullptr;
};

class Mixer {
 public:
  virtual ~Mixer() = default;
  // x: [T, H] normed input; out: [T, H]. Updates this layer's state of each
  // sequence (conv/SSM state or KV cache).
  virtual absl::Status Forward(kernels::Backend* backend, const Tensor& x,
                               absl::Span<const SequenceRows> sequences, Tensor* out) const = 0;
};

}  // namespace jamba::model
