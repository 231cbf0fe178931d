// jamba-engine-bench: prefill and decode throughput of one sequence (batch 1)
// on a checkpoint, for bench/compare/run.sh. Prefill feeds --prefill random
// token ids in one Forward; decode then feeds --decode greedy tokens one at a
// time. Prints one JSON object: backend, threads, tokens, seconds, tokens/s
// (prefill: best of --reps fresh sequences; decode: the whole run).
//
//   jamba-engine-bench --model DIR --prefill 256 --decode 64 [--backend cpu]
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

  double prefill_s = 1e30;
  model::SequenceState state;
  int32_t next = 0;
  for (int r = 0; r < std::max(1, absl::GetFlag(FLAGS_reps)); ++r) {
    ASSIGN_OR_RETURN(state, m->NewSequence());
    model::SequenceChunk chunk{&state, prompt};
    const auto start = std::chrono::steady_clock::now();
    ASSIGN_OR_RETURN(Tensor logits, m->Forward({&chunk, 1}, model::LogitsMode::kLast));
    prefill_s = std::min(prefill_s, Since(start));
    next = model::ArgMax(logits.data<float>(), V);
  }
  const auto start = std::chrono::steady_clock::now();
  for (int s = 0; s < D; ++s) {
    model::SequenceChunk step{&state, absl::MakeConstSpan(&next, 1)};
    ASSIGN_OR_RETURN(Tensor logits, m->Forward({&step, 1}, model::LogitsMode::kLast));
    next = model::ArgMax(logits.data<float>(), V);
  }
  const double decode_s = Since(start);
  std::printf(
      "{\"engine\": \"jamba\", \"backend\": \"%s\", \"threads\": %d, \"prefill_tokens\": %d, "
      "\"prefill_s\": %.6f, \"prefill_tok_s\": %.2f, \"decode_tokens\": %d, \"decode_s\": %.6f, "
      "\"decode_tok_s\": %.2f}\n",
      backend->name().c_str(), ThreadPool::Default().num_threads(), P, prefill_s, P / prefill_s, D,
      decode_s, D / decode_s);
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
