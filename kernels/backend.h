// Backend: the only seam between model code and hardware.
//
// Model code builds tensors with Allocate and calls ops; a backend executes
// them on its device. Activations are f32; the big weight matrices
// (MatMul's w, Embedding's table) may also be BF16 or F16, converted on the
// fly with f32 accumulation. Op shapes are JAMBA_CHECKed (they are programmer
// errors); async device faults surface at Synchronize(). A Backend instance
// is used by one thread at a time.
#pragma once

#include <memory>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/tensor.h"
#include "kernels/params.h"

namespace jamba::kernels {

class Backend {
 public:
  virtual ~Backend() = default;

  virtual Device device() const = 0;
  virtual std::string name() const = 0;

  // A zero-filled tensor on this backend's device; ResourceExhausted on OOM.
  virtual absl::StatusOr<Tensor> Allocate(DType dtype, Shape shape) = 0;
  // As Allocate, but the contents are unspecified where the backend can
  // skip the fill: for an op's output that the op writes whole.
  virtual absl::StatusOr<Tensor> AllocateUninitialized(DType dtype, Shape shape) {
    return Allocate(dtype, std::move(shape));
  }
  // dst = src for tensors of equal dtype and size, any device combination.
  virtual void Copy(const Tensor& src, Tensor* dst) = 0;
  // dst = src converted elementwise, both on this backend's device, equal
  // sizes: F32 to BF16/F16 (round to nearest even), BF16/F16 to F32, or a
  // copy for equal dtypes.  PyTorch: dst.copy_(src)
  virtual void Convert(const Tensor& src, Tensor* dst) = 0;

  // w [N, K] rearranged for this backend's MatMul and GroupedExpertMlp,
  // which read it faster than a row-major one and give the same results
  // bit for bit; other ops reject it (Layout::kBackendPacked). Returns w
  // itself where the backend has no faster layout for it. Called once per
  // weight at load time; ResourceExhausted on OOM.
  virtual absl::StatusOr<Tensor> PrepareMatMulWeight(const Tensor& w) { return w; }
  // y[M,N] = x[M,K] · w[N,K]ᵀ (+ bias[N]).  PyTorch: F.linear(x, w, bias)
  virtual void MatMul(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor* y) = 0;
  // MatMul of one x with several weights, e.g. q, k and v. The results are
  // those of a MatMul per output; a backend may share the work on x between
  // them. No y may alias x.
  virtual void MultiMatMul(const Tensor& x, absl::Span<const MatMulOutput> outs) {
    for (const MatMulOutput& o : outs) MatMul(x, *o.w, o.bias, o.y);
  }
  // y[M,D] = g ⊙ x / sqrt(mean(x², -1) + eps).  gain: [D] f32
  virtual void RmsNorm(const Tensor& x, const Tensor& gain, float eps, Tensor* y) = 0;
  // y[L,H] = table[ids].  ids: [L] i32 with 0 <= id < V (CHECKed)
  virtual void Embedding(const Tensor& table, const Tensor& ids, Tensor* y) = 0;
  // y = a + b, elementwise; y may alias a or b.
  virtual void Add(const Tensor& a, const Tensor& b, Tensor* y) = 0;
  // y = silu(gate) ⊙ up, elementwise; y may alias either input.
  virtual void SiluMul(const Tensor& gate, const Tensor& up, Tensor* y) = 0;

  virtual void CausalConv1d(const CausalConv1dParams& p) = 0;
  virtual void SelectiveScan(const SelectiveScanParams& p) = 0;
  virtual void Attention(const AttentionParams& p) = 0;
  // See MambaStepParams. The default composes the ops above, allocating the
  // intermediates (ResourceExhausted on OOM); a backend may fuse them.
  virtual absl::Status MambaStep(const MambaStepParams& p);

  // MoE routing: p = softmax(logits[L,E]) in f32, then the top k of p per row
  // in descending order (ties: lower expert id first). No renormalisation.
  // weights: [L,k] f32, experts: [L,k] i32.
  virtual void MoeGate(const Tensor& logits, int k, Tensor* weights, Tensor* experts) = 0;
  // y[i,:] = x[rows[i],:].  rows: [n] i32
  virtual void GatherRows(const Tensor& x, const Tensor& rows, Tensor* y) = 0;
  // y[rows[i],:] += scale[i] * x[i,:], for i in order.  scale: [n] f32
  virtual void ScatterAddRows(const Tensor& x, const Tensor& rows, const Tensor& scale,
                              Tensor* y) = 0;

  // See GroupedExpertMlpParams. Rows or experts out of range are CHECKed on
  // host backends and reported by Synchronize() on devices.
  virtual void GroupedExpertMlp(const GroupedExpertMlpParams& p) = 0;

  // Waits for queued work; reports asynchronous device errors.
  virtual absl::Status Synchronize() = 0;
};

// kCpu is the fast CPU backend (kernels/cpu_fast); kCpuReference is the
// readable reference (kernels/cpu) that every backend is tested against.
enum class BackendKind { kCpu, kCuda, kAuto, kCpuReference };

// kAuto picks CUDA when a device answers, else the CPU (logging one line).
// kCuda without a usable device is FailedPrecondition.
absl::StatusOr<std::unique_ptr<Backend>> CreateBackend(BackendKind kind);

}  // namespace jamba::kernels
