// jamba-engine-bench: prefill and decode throughput of one sequence (batch 1)
// on a checkpoint, for bench/compare/run.sh. Prefill feeds --prefill random
// token ids in one Forward; decode then feeds --decode greedy tokens one at a
// time. Prints one JSON object: backend, threads, tokens, seconds, tokens/s
// (prefill: best of --reps fresh sequences after an untimed one; decode: the
// whole run).
//
// With --gemm_probe N, an N x N x N GEMM on the same backend (GemmProbe)
// runs before the first prefill and after each, and the object also gives
// every prefill's tokens/s ("prefill_tok_s_reps") and the GEMM peak at that
// prefill, the mean of the probes either side ("gemm_peak_gflops_reps"):
// report.py divides each prefill by its own moment's peak.
//
//   jamba-engine-bench --model DIR --prefill 256 --decode 64 [--backend cpu]
//   jamba-engine-bench --model DIR --prefill 128 --reps 9 --gemm_probe 1024
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "bench/compare/gemm_probe.h"
#include "core/process_tuning.h"
#include "core/status_macros.h"
#include "core/thread_pool.h"
#include "kernels/backend.h"
#include "model/checkpoint.h"
#include "model/greedy.h"
#include "model/jamba_model.h"

ABSL_FLAG(std::string, model, "", "checkpoint directory (config.json + safetensors)");
ABSL_FLAG(int, prefill, 256, "prompt tokens");
ABSL_FLAG(int, decode, 64, "decode steps after the prompt");
ABSL_FLAG(int, reps, 3, "prefill repetitions (the best is reported)");
ABSL_FLAG(std::string, backend, "cpu", "cpu (fast) or cpu-ref (reference)");
ABSL_FLAG(int, gemm_probe, 0,
          "if > 0, time an N x N x N GEMM on the backend around every prefill (0: off)");

namespace jamba {
namespace {

double Since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

absl::Status Run() {
  const std::string name = absl::GetFlag(FLAGS_backend);
  if (name != "cpu" && name != "cpu-ref") {
    return absl::InvalidArgumentError(absl::StrCat("--backend: unknown backend '", name, "'"));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<kernels::Backend> backend,
                   kernels::CreateBackend(name == "cpu" ? kernels::BackendKind::kCpu
                                                        : kernels::BackendKind::kCpuReference));
  ASSIGN_OR_RETURN(std::unique_ptr<model::Checkpoint> checkpoint,
                   model::Checkpoint::Open(absl::GetFlag(FLAGS_model)));
  ASSIGN_OR_RETURN(std::unique_ptr<model::JambaModel> m,
                   model::JambaModel::Load(*checkpoint, backend.get()));
  const int64_t V = m->config().vocab_size;
  const int P = absl::GetFlag(FLAGS_prefill), D = absl::GetFlag(FLAGS_decode);
  if (P < 1 || D < 1) return absl::InvalidArgumentError("--prefill and --decode must be >= 1");
  std::mt19937 rng(7);
  std::uniform_int_distribution<int32_t> token(0, static_cast<int32_t>(V - 1));
  std::vector<int32_t> prompt(P);
  for (int32_t& id : prompt) id = token(rng);

  const int reps = std::max(1, absl::GetFlag(FLAGS_reps));
  const int probe_size = absl::GetFlag(FLAGS_gemm_probe);
  if (probe_size < 0) return absl::InvalidArgumentError("--gemm_probe must be >= 0");
  {
    // Warm-up: the first prefill also faults in scratch buffers and caches.
    ASSIGN_OR_RETURN(model::SequenceState warm, m->NewSequence());
    model::SequenceChunk chunk{&warm, prompt};
    RETURN_IF_ERROR(m->Forward({&chunk, 1}, model::LogitsMode::kLast).status());
  }
  std::unique_ptr<GemmProbe> probe;
  std::vector<double> probes;  // GFLOP/s before the first prefill and after each
  if (probe_size > 0) {
    probe = std::make_unique<GemmProbe>(backend.get(), probe_size);
    probes.push_back(probe->BestGflops());
  }
  std::vector<double> prefill_tok_s;
  double prefill_s = 1e30;
  model::SequenceState state;
  int32_t next = 0;
  for (int r = 0; r < reps; ++r) {
    ASSIGN_OR_RETURN(state, m->NewSequence());
    model::SequenceChunk chunk{&state, prompt};
    const auto start = std::chrono::steady_clock::now();
    ASSIGN_OR_RETURN(Tensor logits, m->Forward({&chunk, 1}, model::LogitsMode::kLast));
    const double seconds = Since(start);
    prefill_s = std::min(prefill_s, seconds);
    prefill_tok_s.push_back(P / seconds);
    next = model::ArgMax(logits.data<float>(), V);
    if (probe != nullptr) probes.push_back(probe->BestGflops());
  }
  const auto start = std::chrono::steady_clock::now();
  for (int s = 0; s < D; ++s) {
    model::SequenceChunk step{&state, absl::MakeConstSpan(&next, 1)};
    ASSIGN_OR_RETURN(Tensor logits, m->Forward({&step, 1}, model::LogitsMode::kLast));
    next = model::ArgMax(logits.data<float>(), V);
  }
  const double decode_s = Since(start);
  std::string paired;
  if (probe != nullptr) {
    std::vector<double> peaks;
    for (int r = 0; r < reps; ++r) peaks.push_back((probes[r] + probes[r + 1]) / 2);
    auto list = [](const std::vector<double>& v) {
      return absl::StrJoin(
          v, ", ", [](std::string* out, double d) { absl::StrAppend(out, absl::SixDigits(d)); });
    };
    paired = absl::StrCat(", \"gemm_probe\": ", probe_size, ", \"prefill_tok_s_reps\": [",
                          list(prefill_tok_s), "], \"gemm_peak_gflops_reps\": [", list(peaks), "]");
  }
  std::printf(
      "{\"engine\": \"jamba\", \"backend\": \"%s\", \"threads\": %d, \"prefill_tokens\": %d, "
      "\"prefill_s\": %.6f, \"prefill_tok_s\": %.2f, \"decode_tokens\": %d, \"decode_s\": %.6f, "
      "\"decode_tok_s\": %.2f%s}\n",
      backend->name().c_str(), ThreadPool::Default().num_threads(), P, prefill_s, P / prefill_s, D,
      decode_s, D / decode_s, paired.c_str());
  return absl::OkStatus();
}

}  // namespace
}  // namespace jamba

int main(int argc, char** argv) {
  jamba::TuneProcess();
  absl::ParseCommandLine(argc, argv);
  const absl::Status status = jamba::Run();
  if (!status.ok()) {
    std::fprintf(stderr, "jamba-engine-bench: %s\n", status.ToString().c_str());
    return 1;
  }
  return 0;
}
