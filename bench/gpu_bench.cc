// jamba-gpu-bench: times a Jamba-v0.1-shaped model on one GPU with random
// bf16 weights generated on the device (nothing is read or downloaded) and
// prints prefill and decode tokens/s next to the memory-bandwidth roofline
// of the bytes each step must move (weights read, with only the routed
// experts; KV cache; SSM state). By default one 8-layer period is built and
// run, and the full 32-layer model is extrapolated as 4 periods + head.
//
//   jamba-gpu-bench [--periods=N] [--iters=N] [--max_context=N]
//                   [--expert_dtype=bf16|int8] [--kv_dtype=f32|bf16] [--batches=1,8,32]
#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "bench/gpu_model.h"
#include "bench/gpu_profile.h"
#include "core/status_macros.h"

namespace jamba::bench {
namespace {

struct Flags {
  int periods = 1;  // periods built and run (of 4 in Jamba-v0.1)
  int iters = 5;
  int64_t max_context = 131072;
  DType expert_dtype = DType::kBF16;
  DType kv_dtype = DType::kF32;
  std::vector<int> batches = {1, 8, 32};
  bool profile = false;  // also print the op profile and the host/device step split
  bool ok = true;
};

Flags ParseFlags(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&a](const char* name) -> const char* {
      const size_t n = std::strlen(name);
      return a.compare(0, n, name) == 0 ? a.c_str() + n : nullptr;
    };
    if (const char* v = value("--periods="))
      f.periods = std::atoi(v);
    else if (const char* v = value("--iters="))
      f.iters = std::atoi(v);
    else if (const char* v = value("--max_context="))
      f.max_context = std::atoll(v);
    else if (const char* v = value("--expert_dtype="))
      f.expert_dtype = std::string(v) == "int8" ? DType::kI8 : DType::kBF16;
    else if (a == "--profile")
      f.profile = true;
    else if (const char* v = value("--kv_dtype="))
      f.kv_dtype = std::string(v) == "bf16" ? DType::kBF16 : DType::kF32;
    else if (const char* v = value("--batches=")) {
      f.batches.clear();
      for (const char* c = v; *c != 0;) {
        f.batches.push_back(std::atoi(c));
        while (*c != 0 && *c != ',') ++c;
        if (*c == ',') ++c;
      }
    } else {
      std::fprintf(stderr, "unknown flag %s\n", a.c_str());
      f.ok = false;
    }
  }
  return f;
}

// Seconds for `fn` on the backend's stream, by CUDA events.
template <typename Fn>
double Time(kernels::CudaBackend* b, Fn fn) {
  cudaStream_t s = static_cast<cudaStream_t>(b->stream());
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  cudaEventRecord(start, s);
  fn();
  cudaEventRecord(stop, s);
  cudaEventSynchronize(stop);
  float ms = 0;
  cudaEventElapsedTime(&ms, start, stop);
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return ms * 1e-3;
}

// Device copy bandwidth (read + write bytes per second) over 2 x 2 GiB.
double MeasureBandwidth(kernels::CudaBackend* b) {
  const int64_t n = int64_t{1} << 29;
  absl::StatusOr<Tensor> x = b->Allocate(DType::kF32, {n}), y = b->Allocate(DType::kF32, {n});
  if (!x.ok() || !y.ok()) return 0;
  cudaStream_t s = static_cast<cudaStream_t>(b->stream());
  cudaMemcpyAsync(y->raw_data(), x->raw_data(), x->nbytes(), cudaMemcpyDeviceToDevice, s);
  const double t = Time(b, [&] {
    for (int i = 0; i < 5; ++i) {
      cudaMemcpyAsync(y->raw_data(), x->raw_data(), x->nbytes(), cudaMemcpyDeviceToDevice, s);
    }
  });
  return 5 * 2.0 * x->nbytes() / t;
}

absl::StatusOr<Tensor> RandomIds(kernels::Backend* b, int64_t n, int64_t vocab, std::mt19937* rng) {
  Tensor host = Tensor::Zeros(DType::kI32, {n});
  std::uniform_int_distribution<int32_t> pick(0, static_cast<int32_t>(vocab - 1));
  for (int64_t i = 0; i < n; ++i) host.data<int32_t>()[i] = pick(*rng);
  ASSIGN_OR_RETURN(Tensor d, b->Allocate(DType::kI32, {n}));
  b->Copy(host, &d);
  return d;
}

absl::Status Run(const Flags& flags) {
  ASSIGN_OR_RETURN(std::unique_ptr<kernels::CudaBackend> backend,
                   kernels::CudaBackend::Create(kernels::CudaBackendOptions()));
  kernels::CudaBackend* b = backend.get();
  cudaDeviceProp prop;
  cudaGetDeviceProperties(&prop, 0);
  const double bw = MeasureBandwidth(b);
  std::printf("device: %s, %d SMs, %.1f GiB; measured copy bandwidth %.0f GB/s\n", prop.name,
              prop.multiProcessorCount, prop.totalGlobalMem / 1073741824.0, bw * 1e-9);

  GpuModelShape shape;
  shape.layers = 8 * flags.periods;
  shape.expert_dtype = flags.expert_dtype;
  shape.kv_dtype = flags.kv_dtype;
  const double scale = 4.0 / flags.periods;  // to the 32 layers of Jamba-v0.1
  ASSIGN_OR_RETURN(GpuModel model, GpuModel::Create(shape, b));
  RETURN_IF_ERROR(b->Synchronize());
  std::printf(
      "model: Jamba-v0.1 shapes, %d of 32 layers built (bf16 weights %.1f GB incl. all "
      "experts); full-model figures = %.0f x layers + embedding/lm_head\n",
      shape.layers, model.WeightBytesAllExperts() * 1e-9, scale);
  std::printf(
      "experts %s; activations f32; decode-sized MatMuls and experts by our one-pass kernels "
      "(f32 arithmetic), larger ones by cuBLAS bf16 GEMMs with f32 accumulation; %s KV cache\n",
      flags.expert_dtype == DType::kI8 ? "int8 with per-row scales" : "bf16",
      flags.kv_dtype == DType::kBF16 ? "bf16" : "f32");
  // Full-model device memory: 4 periods of weights + head, and per sequence
  // 4 periods of KV cache and Mamba state at the step's context.
  const double full_weights =
      scale * model.WeightBytesAllExperts() + 2.0 * shape.vocab * shape.hidden * 2;
  const double kv_per_token = scale * shape.layers / 8 * 2.0 * shape.n_kv_heads * shape.head_dim *
                              DTypeSize(shape.kv_dtype);
  const double device_bytes = static_cast<double>(prop.totalGlobalMem);
  std::printf("full model: weights %.1f GB, KV cache %.0f KB per token; device %.1f GB\n\n",
              full_weights * 1e-9, kv_per_token * 1e-3, device_bytes * 1e-9);
  std::mt19937 rng(1);
  const char* prefill_note = "";

  std::printf(
      "| step | batch | context | tokens/s | roofline tokens/s | %% of roofline | "
      "ms/step | GB moved/step | full model fits |\n|---|---|---|---|---|---|---|---|---|\n");
  auto fits = [&](int batch, int64_t context) {
    return full_weights + batch * context * kv_per_token < 0.95 * device_bytes ? "yes" : "no";
  };
  // Prefill: one sequence of 4096 tokens.
  {
    const int64_t L = 4096;
    ASSIGN_OR_RETURN(std::vector<GpuSequence> seqs, model.NewSequences(1, L));
    ASSIGN_OR_RETURN(Tensor ids, RandomIds(b, L, shape.vocab, &rng));
    ASSIGN_OR_RETURN(Tensor h, b->Allocate(DType::kF32, {L, shape.hidden}));
    ASSIGN_OR_RETURN(Tensor h2, b->Allocate(DType::kF32, {L, shape.hidden}));
    double layer_bytes = 0, head_bytes = 0, t_layers = 1e30, t_head = 1e30;
    for (int it = 0; it < std::max(2, flags.iters / 2); ++it) {
      seqs[0].length = 0;
      b->Embedding(model.embed_table(), ids, &h);
      layer_bytes = head_bytes = 0;
      absl::Status st;
      t_layers =
          std::min(t_layers, Time(b, [&] { st = model.Layers({&seqs[0]}, &h, &layer_bytes); }));
      RETURN_IF_ERROR(st);
      ASSIGN_OR_RETURN(const double expert_bytes, model.RoutedExpertBytes());
      layer_bytes += expert_bytes;
      t_head = std::min(t_head, Time(b, [&] { st = model.Head(ids, &h2, 1, &head_bytes); }));
      RETURN_IF_ERROR(st);
    }
    const double t = scale * t_layers + t_head, bytes = scale * layer_bytes + head_bytes;
    std::printf("| prefill | 1 | %lld | %.0f | %.0f | %.0f%% | %.1f | %.1f | %s |\n",
                static_cast<long long>(L), L / t, L / (bytes / bw), 100 * (bytes / bw) / t, t * 1e3,
                bytes * 1e-9, fits(1, L));
    RETURN_IF_ERROR(b->Synchronize());
    prefill_note =
        "prefill is compute-bound: its bandwidth roofline (all weights read once "
        "per 4096 tokens) is far above what the GEMMs allow";
  }
  // Decode: one token per sequence at a context already in the cache.
  const int max_batch = *std::max_element(flags.batches.begin(), flags.batches.end());
  ASSIGN_OR_RETURN(std::vector<GpuSequence> seqs, model.NewSequences(max_batch, flags.max_context));
  for (const int batch : flags.batches) {
    for (const int64_t context : {int64_t{4096}, int64_t{32768}, int64_t{131072}}) {
      if (context > flags.max_context) continue;
      std::vector<GpuSequence*> group;
      for (int i = 0; i < batch; ++i) group.push_back(&seqs[i]);
      ASSIGN_OR_RETURN(Tensor ids, RandomIds(b, batch, shape.vocab, &rng));
      ASSIGN_OR_RETURN(Tensor h, b->Allocate(DType::kF32, {batch, shape.hidden}));
      ASSIGN_OR_RETURN(Tensor h2, b->Allocate(DType::kF32, {batch, shape.hidden}));
      double layer_bytes = 0, head_bytes = 0, t_layers = 0, t_head = 0;
      for (int it = 0; it < flags.iters + 1; ++it) {
        for (GpuSequence* s : group) s->length = context - 1;
        b->Embedding(model.embed_table(), ids, &h);
        double lb = 0, hb = 0;
        absl::Status st;
        double host_s = 0;
        const double tl = Time(b, [&] {
          const auto t0 = std::chrono::steady_clock::now();
          st = model.Layers(group, &h, &lb);
          host_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        });
        RETURN_IF_ERROR(st);
        if (flags.profile && it == flags.iters && batch == flags.batches.front() &&
            context == 4096) {
          std::fprintf(stderr, "batch %d step: host enqueue %.2f ms, device %.2f ms (%d layers)\n",
                       batch, host_s * 1e3, tl * 1e3, shape.layers);
        }
        ASSIGN_OR_RETURN(const double expert_bytes, model.RoutedExpertBytes());
        lb += expert_bytes;
        const double th = Time(b, [&] { st = model.Head(ids, &h2, batch, &hb); });
        RETURN_IF_ERROR(st);
        if (it == 0) continue;  // warm-up
        t_layers += tl / flags.iters;
        t_head += th / flags.iters;
        layer_bytes += lb / flags.iters;
        head_bytes += hb / flags.iters;
      }
      const double t = scale * t_layers + t_head, bytes = scale * layer_bytes + head_bytes;
      std::printf("| decode | %d | %lld | %.0f | %.0f | %.0f%% | %.2f | %.2f | %s |\n", batch,
                  static_cast<long long>(context), batch / t, batch / (bytes / bw),
                  100 * (bytes / bw) / t, t * 1e3, bytes * 1e-9, fits(batch, context));
      std::fflush(stdout);
    }
  }
  std::printf("\nNote: %s.\n", prefill_note);
  if (flags.profile) RETURN_IF_ERROR(RunProfile(b, bw));
  return b->Synchronize();
}

}  // namespace
}  // namespace jamba::bench

int main(int argc, char** argv) {
  const jamba::bench::Flags flags = jamba::bench::ParseFlags(argc, argv);
  if (!flags.ok || flags.batches.empty() || flags.periods < 1 || flags.iters < 1) {
    std::fprintf(stderr,
                 "usage: jamba-gpu-bench [--periods=N>=1] [--iters=N>=1] [--max_context=N] "
                 "[--expert_dtype=bf16|int8] [--kv_dtype=f32|bf16] [--batches=1,8,32]\n");
    return 2;
  }
  const absl::Status status = jamba::bench::Run(flags);
  if (!status.ok()) {
    std::fprintf(stderr, "jamba-gpu-bench: %s\n", status.ToString().c_str());
    return 1;
  }
  return 0;
}
