// CudaBackend: the Backend on one NVIDIA GPU. Device memory comes from a
// caching cudaMalloc allocator, every op is queued on the backend's own
// stream, matrix products go through cuBLAS and the other ops through the
// kernels of kernels/cuda/*.cu. Activations stay f32.
//
// MatMul modes: kBf16 rounds the activations to the weights' dtype (bf16 or
// f16) and runs cublasGemmEx with f32 accumulation (CUBLAS_COMPUTE_32F);
// kF32 widens such weights to f32 and runs an f32 GEMM without TF32, for
// parity with the CPU reference. f32 weights always take the f32 GEMM.
// Like every Backend, an instance is used by one thread at a time.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/backend.h"

namespace jamba::kernels {

class CudaAllocator;

enum class CudaMatMulMode { kBf16, kF32 };

struct CudaBackendOptions {
  int device = 0;
  CudaMatMulMode matmul = CudaMatMulMode::kBf16;
};

class CudaBackend final : public Backend {
 public:
  // FailedPrecondition when the device is missing or unusable.
  static absl::StatusOr<std::unique_ptr<CudaBackend>> Create(const CudaBackendOptions& options);
  ~CudaBackend() override;

  Device device() const override { return Device::kCuda; }
  std::string name() const override;

  absl::StatusOr<Tensor> Allocate(DType dtype, Shape shape) override;
  void Copy(const Tensor& src, Tensor* dst) override;
  void Convert(const Tensor& src, Tensor* dst) override;

  void MatMul(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor* y) override;
  void RmsNorm(const Tensor& x, const Tensor& gain, float eps, Tensor* y) override;
  void Embedding(const Tensor& table, const Tensor& ids, Tensor* y) override;
  void Add(const Tensor& a, const Tensor& b, Tensor* y) override;
  void SiluMul(const Tensor& gate, const Tensor& up, Tensor* y) override;

  void CausalConv1d(const CausalConv1dParams& p) override;
  void SelectiveScan(const SelectiveScanParams& p) override;
  void Attention(const AttentionParams& p) override;

  void MoeGate(const Tensor& logits, int k, Tensor* weights, Tensor* experts) override;
  void GatherRows(const Tensor& x, const Tensor& rows, Tensor* y) override;
  void ScatterAddRows(const Tensor& x, const Tensor& rows, const Tensor& scale, Tensor* y) override;
  // Up to kGroupedMaxRoutes routes (kGroupedMaxRoutesInt8 for I8 experts):
  // three kernels, no host round trip; beyond: the routes are grouped on
  // the host and each expert runs through cuBLAS (I8 experts widened to
  // bf16 first). Measured on an H200 (bench/results/gpu.md): the kernels
  // read bf16 at 75% of the copy bandwidth with one row per expert and win
  // up to batch 16 (32 routes); at batch 32 cuBLAS wins; for I8, widening
  // costs more than the kernels lose up to 128 routes.
  void GroupedExpertMlp(const GroupedExpertMlpParams& p) override;
  static constexpr int64_t kGroupedMaxRoutes = 32;
  static constexpr int64_t kGroupedMaxRoutesInt8 = 128;
  // MatMuls of at most this many rows take the one-pass GEMV (71% of the
  // copy bandwidth at M = 1; 20% at M = 8, where cuBLAS reaches 62%).
  static constexpr int64_t kGemvMaxRows = 1;

  // Waits for the stream; Internal on a device fault or when a kernel met an
  // out-of-range index (Embedding ids, GatherRows / ScatterAddRows rows).
  absl::Status Synchronize() override;

  // Beyond Backend, for benchmarks and tests: fills a device tensor (F32,
  // BF16, F16 or I8) with uniform [lo, hi) values derived from `seed`.
  void FillRandom(Tensor* t, uint64_t seed, float lo, float hi);
  // The backend's stream, as a cudaStream_t.
  void* stream() const { return stream_; }
  int multiprocessor_count() const { return num_sms_; }
  CudaMatMulMode matmul_mode() const { return options_.matmul; }
  size_t bytes_in_use() const;

 private:
  enum Scratch {
    kScratchX,
    kScratchW,
    kScratchConv,
    kScratchAttn,
    kScratchScan,
    kScratchLink,
    kScratchExperts,
    kNumScratch
  };

  explicit CudaBackend(const CudaBackendOptions& options) : options_(options) {}
  // A device block of at least `bytes` for one op's temporaries; reused by
  // later ops (the stream orders them). Aborts if the device is out of memory.
  void* ScratchSpace(Scratch slot, size_t bytes);
  void SetDevice() const;
  // The device copy of a pointer table (experts' weights, sequences'
  // states), cached by its contents: a steady batch reuses its tables.
  const void* DeviceTable(const std::vector<char>& host_table);
  void GroupedExpertMlpOnHost(const GroupedExpertMlpParams& p, int64_t H);

  CudaBackendOptions options_;
  std::shared_ptr<CudaAllocator> allocator_;
  void* stream_ = nullptr;         // cudaStream_t
  void* cublas_ = nullptr;         // cublasHandle_t
  std::shared_ptr<Buffer> error_;  // one device int: ORed ErrorBits
  std::shared_ptr<Buffer> scratch_[kNumScratch];
  std::map<std::vector<char>, std::shared_ptr<Buffer>> device_tables_;
  int num_sms_ = 0;
  std::string device_name_;
};

// CreateBackend(kCuda)'s implementation: FailedPrecondition naming the CUDA
// error when no device answers.
absl::StatusOr<std::unique_ptr<Backend>> CreateCudaBackend(const CudaBackendOptions& options);

}  // namespace jamba::kernels
