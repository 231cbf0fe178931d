// CudaBackend: device setup, memory, copies, cuBLAS MatMul and Synchronize.
// The other ops are in cuda_backend_ops.cc.
#include "kernels/cuda/cuda_backend.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <cstring>
#include <limits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "kernels/cuda/cuda_allocator.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cuda_device.h"
#include "kernels/cuda/cuda_util.h"
#include "kernels/cuda/ops.h"

namespace jamba::kernels {

absl::StatusOr<std::unique_ptr<CudaBackend>> CudaBackend::Create(
    const CudaBackendOptions& options) {
  std::string error;
  const int count = CudaDeviceCount(&error);
  if (count == 0) {
    return absl::FailedPreconditionError(
        error.empty()
            ? std::string("no CUDA device found: cudaGetDeviceCount returned 0")
            : absl::StrCat("no CUDA device found: cudaGetDeviceCount failed with ", error));
  }
  if (options.device < 0 || options.device >= count) {
    return absl::FailedPreconditionError(
        absl::StrCat("CUDA device ", options.device, " requested, ", count, " present"));
  }
  std::unique_ptr<CudaBackend> b(new CudaBackend(options));
  CUDA_CHECK(cudaSetDevice(options.device));
  cudaDeviceProp prop;
  CUDA_CHECK(cudaGetDeviceProperties(&prop, options.device));
  b->num_sms_ = prop.multiProcessorCount;
  b->device_name_ = prop.name;
  cudaStream_t stream = nullptr;
  CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  b->stream_ = stream;
  cublasHandle_t handle = nullptr;
  const cublasStatus_t status = cublasCreate(&handle);
  if (status != CUBLAS_STATUS_SUCCESS) {
    return absl::FailedPreconditionError(
        absl::StrCat("cublasCreate failed: ", cublasGetStatusName(status)));
  }
  b->cublas_ = handle;
  CUBLAS_CHECK(cublasSetStream(handle, stream));
  b->allocator_ = std::make_shared<CudaAllocator>(options.device);
  absl::StatusOr<std::shared_ptr<Buffer>> word = b->allocator_->Allocate(sizeof(int));
  if (!word.ok()) return word.status();
  b->error_ = *std::move(word);
  CUDA_CHECK(cudaMemsetAsync(b->error_->data(), 0, sizeof(int), stream));
  return b;
}

CudaBackend::~CudaBackend() {
  if (stream_ == nullptr) return;
  SetDevice();
  cudaStreamSynchronize(static_cast<cudaStream_t>(stream_));
  for (auto& s : scratch_) s.reset();
  error_.reset();
  if (cublas_ != nullptr) cublasDestroy(static_cast<cublasHandle_t>(cublas_));
  cudaStreamDestroy(static_cast<cudaStream_t>(stream_));
}

std::string CudaBackend::name() const {
  return absl::StrCat("cuda:", options_.device,
                      options_.matmul == CudaMatMulMode::kF32 ? ":f32" : "");
}

void CudaBackend::SetDevice() const { CUDA_CHECK(cudaSetDevice(options_.device)); }

size_t CudaBackend::bytes_in_use() const { return allocator_->bytes_in_use(); }

absl::StatusOr<Tensor> CudaBackend::Allocate(DType dtype, Shape shape) {
  uint64_t bytes = DTypeSize(dtype);
  for (int64_t d : shape) {
    if (d < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("Allocate: negative dimension in ", ShapeString(shape)));
    }
    if (d != 0 && bytes > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / d) {
      return absl::ResourceExhaustedError(
          absl::StrCat("Allocate: ", ShapeString(shape), " overflows the address space"));
    }
    bytes *= static_cast<uint64_t>(d);
  }
  SetDevice();
  absl::StatusOr<std::shared_ptr<Buffer>> buffer = allocator_->Allocate(bytes);
  if (!buffer.ok()) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "Allocate ", DTypeName(dtype), ShapeString(shape), ": ", buffer.status().message()));
  }
  CUDA_CHECK(cudaMemsetAsync((*buffer)->data(), 0, bytes, static_cast<cudaStream_t>(stream_)));
  return Tensor(dtype, std::move(shape), *std::move(buffer));
}

void CudaBackend::Copy(const Tensor& src, Tensor* dst) {
  JAMBA_CHECK(src.defined() && dst->defined()) << "Copy: undefined tensor";
  JAMBA_CHECK(src.dtype() == dst->dtype() && src.numel() == dst->numel())
      << "Copy: src " << src.DebugString() << " dst " << dst->DebugString();
  if (src.nbytes() == 0) return;
  if (src.device() == Device::kCpu && dst->device() == Device::kCpu) {
    std::memmove(dst->raw_data(), src.raw_data(), src.nbytes());
    return;
  }
  SetDevice();
  const cudaStream_t stream = static_cast<cudaStream_t>(stream_);
  // Host sources are staged by the runtime before this returns, so they may
  // be freed at once; host destinations are ready when this returns.
  CUDA_CHECK(
      cudaMemcpyAsync(dst->raw_data(), src.raw_data(), src.nbytes(), cudaMemcpyDefault, stream));
  if (dst->device() == Device::kCpu) CUDA_CHECK(cudaStreamSynchronize(stream));
}

void CudaBackend::Convert(const Tensor& src, Tensor* dst) {
  CheckCuda(src, "Convert", "src");
  CheckCuda(*dst, "Convert", "dst");
  auto is_float = [](DType d) { return d == DType::kF32 || d == DType::kBF16 || d == DType::kF16; };
  const bool f32_in = src.dtype() == DType::kF32, f32_out = dst->dtype() == DType::kF32;
  JAMBA_CHECK(src.numel() == dst->numel() && is_float(src.dtype()) && is_float(dst->dtype()) &&
              (f32_in || f32_out))
      << "Convert: src " << src.DebugString() << " dst " << dst->DebugString()
      << " (want equal sizes, F32 on at least one side, F32/BF16/F16)";
  if (src.numel() == 0) return;
  SetDevice();
  const cudaStream_t stream = static_cast<cudaStream_t>(stream_);
  if (src.dtype() == dst->dtype()) {
    CUDA_CHECK(cudaMemcpyAsync(dst->raw_data(), src.raw_data(), src.nbytes(),
                               cudaMemcpyDeviceToDevice, stream));
  } else if (f32_in) {
    cuda::LaunchConvertFromF32(
        {src.data<float>(), dst->raw_data(), ToWeightType(dst->dtype()), src.numel()}, stream);
  } else {
    cuda::LaunchDequantToF32(
        {src.raw_data(), ToWeightType(src.dtype()), dst->data<float>(), src.numel()}, stream);
  }
}

void CudaBackend::MatMul(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor* y) {
  CheckCuda(x, "MatMul", "x");
  CheckCuda(w, "MatMul", "w");
  CheckCuda(*y, "MatMul", "y");
  JAMBA_CHECK(x.rank() == 2 && w.rank() == 2 && y->rank() == 2 && x.dim(1) == w.dim(1) &&
              y->dim(0) == x.dim(0) && y->dim(1) == w.dim(0))
      << "MatMul: x " << x.DebugString() << " w " << w.DebugString() << " y " << y->DebugString()
      << " (want x [M,K], w [N,K], y [M,N])";
  JAMBA_CHECK(x.dtype() == DType::kF32 && y->dtype() == DType::kF32 &&
              (w.dtype() == DType::kF32 || w.dtype() == DType::kBF16 || w.dtype() == DType::kF16))
      << "MatMul: x " << x.DebugString() << " w " << w.DebugString() << " y " << y->DebugString()
      << " (want f32 x and y; F32, BF16 or F16 w)";
  JAMBA_CHECK(y->raw_data() != x.raw_data()) << "MatMul: y must not alias x";
  if (bias != nullptr) {
    CheckCuda(*bias, "MatMul", "bias");
    JAMBA_CHECK(bias->dtype() == DType::kF32 && bias->numel() == w.dim(0))
        << "MatMul: bias " << bias->DebugString() << " for w " << w.DebugString();
  }
  const int64_t M = x.dim(0), K = x.dim(1), N = w.dim(0);
  constexpr int64_t kIntMax = std::numeric_limits<int>::max();
  JAMBA_CHECK(M <= kIntMax && N <= kIntMax && K <= kIntMax && M * K <= kIntMax * 64)
      << "MatMul: " << x.DebugString() << " x " << w.DebugString() << " too large for cuBLAS";
  if (M == 0 || N == 0) return;
  SetDevice();
  const cudaStream_t stream = static_cast<cudaStream_t>(stream_);
  if (M <= kGemvMaxRows) {
    // Decode-sized: one pass over w in f32 arithmetic, bias fused.
    cuda::GemvParams g;
    g.x = x.data<float>();
    g.w = w.raw_data();
    g.w_type = ToWeightType(w.dtype());
    g.bias = bias != nullptr ? bias->data<float>() : nullptr;
    g.y = y->data<float>();
    g.M = M;
    g.N = N;
    g.K = K;
    // Fewer two-column warps than four per multiprocessor leave SMs idle.
    g.column_blocks_below = std::min<int64_t>(8 * int64_t{num_sms_}, 1024);
    cuda::LaunchGemv(g, stream);
    return;
  }
  if (K == 0) {
    CUDA_CHECK(cudaMemsetAsync(y->raw_data(), 0, y->nbytes(), stream));
  } else {
    const void* a = w.raw_data();  // [N, K] row-major = K x N column-major
    const void* b = x.raw_data();  // [M, K] row-major = K x M column-major
    cudaDataType_t ab_type = CUDA_R_32F;
    cublasComputeType_t compute = CUBLAS_COMPUTE_32F_PEDANTIC;  // no TF32
    if (w.dtype() != DType::kF32 && options_.matmul == CudaMatMulMode::kF32) {
      float* wf = static_cast<float*>(ScratchSpace(kScratchW, N * K * sizeof(float)));
      cuda::LaunchDequantToF32({a, ToWeightType(w.dtype()), wf, N * K}, stream);
      a = wf;
    } else if (w.dtype() != DType::kF32) {
      void* xl = ScratchSpace(kScratchX, M * K * 2);
      cuda::LaunchConvertFromF32({x.data<float>(), xl, ToWeightType(w.dtype()), M * K}, stream);
      b = xl;
      ab_type = w.dtype() == DType::kBF16 ? CUDA_R_16BF : CUDA_R_16F;
      compute = CUBLAS_COMPUTE_32F;
    }
    // y^T (N x M, column-major) = w (K x N)^T . x^T (K x M).
    // PyTorch: y = F.linear(x, w)
    const float alpha = 1.0f, beta = 0.0f;
    CUBLAS_CHECK(cublasGemmEx(static_cast<cublasHandle_t>(cublas_), CUBLAS_OP_T, CUBLAS_OP_N,
                              static_cast<int>(N), static_cast<int>(M), static_cast<int>(K), &alpha,
                              a, ab_type, static_cast<int>(K), b, ab_type, static_cast<int>(K),
                              &beta, y->raw_data(), CUDA_R_32F, static_cast<int>(N), compute,
                              CUBLAS_GEMM_DEFAULT));
  }
  if (bias != nullptr) cuda::LaunchBiasAdd({y->data<float>(), bias->data<float>(), M, N}, stream);
}

absl::Status CudaBackend::Synchronize() {
  SetDevice();
  const cudaStream_t stream = static_cast<cudaStream_t>(stream_);
  const cudaError_t status = cudaStreamSynchronize(stream);
  if (status != cudaSuccess) {
    return absl::InternalError(absl::StrCat("CUDA stream failed: ", cudaGetErrorName(status), ": ",
                                            cudaGetErrorString(status)));
  }
  int bits = 0;
  CUDA_CHECK(cudaMemcpyAsync(&bits, error_->data(), sizeof(int), cudaMemcpyDeviceToHost, stream));
  CUDA_CHECK(cudaStreamSynchronize(stream));
  if (bits == 0) return absl::OkStatus();
  CUDA_CHECK(cudaMemsetAsync(error_->data(), 0, sizeof(int), stream));
  std::string what;
  if (bits & cuda::kEmbeddingIdOutOfRange) what += " Embedding: an id outside [0, V);";
  if (bits & cuda::kGatherRowOutOfRange) what += " GatherRows: a row index out of range;";
  if (bits & cuda::kScatterRowOutOfRange) what += " ScatterAddRows: a row index out of range;";
  if (bits & cuda::kExpertRouteOutOfRange) {
    what += " GroupedExpertMlp: a row or expert index out of range, or an expert without weights;";
  }
  return absl::InternalError(
      absl::StrCat("CUDA kernels met bad indices (results undefined):", what));
}

void CudaBackend::FillRandom(Tensor* t, uint64_t seed, float lo, float hi) {
  CheckCuda(*t, "FillRandom", "t");
  JAMBA_CHECK(t->dtype() != DType::kI32) << "FillRandom: " << t->DebugString();
  // I8 tensors get the integers of [lo, hi) rounded and clamped to +-127.
  SetDevice();
  cuda::LaunchFillRandom({t->raw_data(), ToWeightType(t->dtype()), t->numel(), seed, lo, hi},
                         static_cast<cudaStream_t>(stream_));
}

void* CudaBackend::ScratchSpace(Scratch slot, size_t bytes) {
  std::shared_ptr<Buffer>& s = scratch_[slot];
  if (s == nullptr || s->size() < bytes) {
    s.reset();  // back to the cache first, so a grown block can reuse it
    absl::StatusOr<std::shared_ptr<Buffer>> buffer = allocator_->Allocate(bytes);
    JAMBA_CHECK(buffer.ok()) << "CUDA scratch space: " << buffer.status();
    s = *std::move(buffer);
  }
  return s->data();
}

absl::StatusOr<std::unique_ptr<Backend>> CreateCudaBackend(const CudaBackendOptions& options) {
  absl::StatusOr<std::unique_ptr<CudaBackend>> b = CudaBackend::Create(options);
  if (!b.ok()) return b.status();
  return std::unique_ptr<Backend>(*std::move(b));
}

}  // namespace jamba::kernels
