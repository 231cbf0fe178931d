// jamba-cli: run a Jamba checkpoint from the command line.
//
//   jamba-cli logits   --model DIR --ids 1,5,9 [--top_k 10] [--logits_out FILE]
//   jamba-cli generate --model DIR --ids 1,5,9 [--max_new_tokens 16] [--prefill_chunk N]
//
// `logits` prints the top-k next-token logits after the given ids and, with
// --logits_out, writes the logits of every position as raw little-endian
// float32 [L, V]. `generate` prints greedy tokens. Errors are one line on
// stderr and exit code 1.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <numeric>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/process_tuning.h"
#include "core/status_macros.h"
#include "kernels/backend.h"
#include "model/checkpoint.h"
#include "model/greedy.h"
#include "model/jamba_model.h"

ABSL_FLAG(std::string, model, "", "checkpoint directory (config.json + safetensors)");
ABSL_FLAG(std::string, ids, "", "comma-separated prompt token ids");
ABSL_FLAG(int, top_k, 10, "logits: how many next-token logits to print");
ABSL_FLAG(std::string, logits_out, "", "logits: write every position's logits here (f32 LE)");
ABSL_FLAG(int, max_new_tokens, 16, "generate: tokens to generate");
ABSL_FLAG(bool, ignore_eos, false, "generate: keep going after an end-of-sequence token");
ABSL_FLAG(int64_t, prefill_chunk, 0, "feed the prompt in chunks of this many tokens (0: at once)");
ABSL_FLAG(std::string, backend, "cpu", "cpu (fast), cpu-ref (reference), cuda or auto");

namespace jamba {
namespace {

absl::StatusOr<std::vector<int32_t>> ParseIds(const std::string& text) {
  std::vector<int32_t> ids;
  for (absl::string_view piece : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    int32_t id;
    if (!absl::SimpleAtoi(piece, &id)) {
      return absl::InvalidArgumentError(absl::StrCat("--ids: '", piece, "' is not an integer"));
    }
    ids.push_back(id);
  }
  if (ids.empty()) return absl::InvalidArgumentError("--ids: give at least one token id");
  return ids;
}

absl::StatusOr<kernels::BackendKind> ParseBackend(const std::string& name) {
  if (name == "cpu") return kernels::BackendKind::kCpu;
  if (name == "cpu-ref") return kernels::BackendKind::kCpuReference;
  if (name == "cuda") return kernels::BackendKind::kCuda;
  if (name == "auto") return kernels::BackendKind::kAuto;
  return absl::InvalidArgumentError(absl::StrCat("--backend: unknown backend '", name, "'"));
}

absl::Status PrintLogits(model::JambaModel& m, const std::vector<int32_t>& ids) {
  ASSIGN_OR_RETURN(model::SequenceState state, m.NewSequence());
  const int64_t chunk = absl::GetFlag(FLAGS_prefill_chunk) > 0 ? absl::GetFlag(FLAGS_prefill_chunk)
                                                               : static_cast<int64_t>(ids.size());
  const int64_t V = m.config().vocab_size;
  std::vector<float> all;  // [L, V]
  for (size_t begin = 0; begin < ids.size(); begin += chunk) {
    const size_t n = std::min(ids.size() - begin, static_cast<size_t>(chunk));
    model::SequenceChunk piece{&state, absl::MakeConstSpan(ids).subspan(begin, n)};
    ASSIGN_OR_RETURN(Tensor logits, m.Forward({&piece, 1}, model::LogitsMode::kAll));
    all.insert(all.end(), logits.data<float>(), logits.data<float>() + logits.numel());
  }
  const float* last = all.data() + (ids.size() - 1) * V;
  std::vector<int32_t> order(V);
  std::iota(order.begin(), order.end(), 0);
  const int k = std::clamp<int>(absl::GetFlag(FLAGS_top_k), 1, static_cast<int>(V));
  std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int32_t a, int32_t b) {
    return last[a] > last[b] || (last[a] == last[b] && a < b);
  });
  std::printf("top %d next-token logits after %zu tokens:\n", k, ids.size());
  for (int i = 0; i < k; ++i) std::printf("  %6d  %+.6f\n", order[i], last[order[i]]);
  const std::string out = absl::GetFlag(FLAGS_logits_out);
  if (!out.empty()) {
    std::ofstream file(out, std::ios::binary);
    file.write(reinterpret_cast<const char*>(all.data()), all.size() * sizeof(float));
    if (!file) return absl::UnavailableError(absl::StrCat("--logits_out: cannot write ", out));
    std::printf("wrote logits [%zu, %lld] as little-endian float32 to %s\n", ids.size(),
                static_cast<long long>(V), out.c_str());
  }
  return absl::OkStatus();
}

absl::Status Generate(model::JambaModel& m, const std::vector<int32_t>& ids) {
  model::GreedyOptions options;
  options.max_new_tokens = absl::GetFlag(FLAGS_max_new_tokens);
  options.stop_at_eos = !absl::GetFlag(FLAGS_ignore_eos);
  options.prefill_chunk = absl::GetFlag(FLAGS_prefill_chunk);
  if (options.max_new_tokens < 1)
    return absl::InvalidArgumentError("--max_new_tokens must be >= 1");
  const auto start = std::chrono::steady_clock::now();
  ASSIGN_OR_RETURN(std::vector<int32_t> tokens, model::GenerateGreedy(m, ids, options));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%s\n", absl::StrJoin(tokens, ",").c_str());
  std::fprintf(stderr, "generated %zu tokens in %.3f s\n", tokens.size(), seconds);
  return absl::OkStatus();
}

absl::Status Run(const std::string& command) {
  if (command != "logits" && command != "generate") {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown command '", command, "' (expected logits or generate)"));
  }
  if (absl::GetFlag(FLAGS_model).empty()) return absl::InvalidArgumentError("--model is required");
  ASSIGN_OR_RETURN(std::vector<int32_t> ids, ParseIds(absl::GetFlag(FLAGS_ids)));
  ASSIGN_OR_RETURN(kernels::BackendKind kind, ParseBackend(absl::GetFlag(FLAGS_backend)));
  ASSIGN_OR_RETURN(std::unique_ptr<kernels::Backend> backend, kernels::CreateBackend(kind));
  ASSIGN_OR_RETURN(std::unique_ptr<model::Checkpoint> checkpoint,
                   model::Checkpoint::Open(absl::GetFlag(FLAGS_model)));
  ASSIGN_OR_RETURN(std::unique_ptr<model::JambaModel> m,
                   model::JambaModel::Load(*checkpoint, backend.get()));
  return command == "logits" ? PrintLogits(*m, ids) : Generate(*m, ids);
}

}  // namespace
}  // namespace jamba

int main(int argc, char** argv) {
  jamba::TuneProcess();
  absl::SetProgramUsageMessage(
      "jamba-cli logits|generate --model DIR --ids 1,2,3 [flags]; see --help");
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() != 2) {
    std::fprintf(stderr, "jamba-cli: expected one command, logits or generate (see --help)\n");
    return 1;
  }
  absl::Status status = jamba::Run(args[1]);
  if (!status.ok()) {
    std::fprintf(stderr, "jamba-cli: %s\n", status.ToString().c_str());
    return 1;
  }
  return 0;
}
