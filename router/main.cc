// jamba-router: the public Jamba generation service.
//
// Loads the checkpoint's mixer half (or everything, without --experts),
// connects to the expert shards, serves jamba.v1.JambaService plus gRPC
// health and reflection. Flags only; the work is in the libraries. Exit
// code: 0 after a clean drain (SIGTERM), 1 when it cannot start, 2 when the
// drain had to cut calls off, 3 after a fatal engine error.
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "core/process_tuning.h"
#include "router/router_server.h"
#include "security/server_flags.h"

ABSL_FLAG(std::string, model, "", "checkpoint directory (config.json + safetensors)");
ABSL_FLAG(std::string, host, "127.0.0.1", "address to listen on");
ABSL_FLAG(int, port, 0, "port to listen on (0: pick a free one)");
ABSL_FLAG(std::string, experts, "",
          "remote expert shards: comma-separated shards, each a |-separated list of replica "
          "targets; expert e of every MoE layer goes to shard e mod S. Empty: in-process");
ABSL_FLAG(std::string, placement, "", "expert placement map (JSON) instead of --experts");
ABSL_FLAG(std::string, mixers, "",
          "data-parallel mixer workers: comma-separated targets, each host:port (one replica) "
          "or dns:///name:port (every address the name resolves to, re-resolved). Empty: the "
          "mixer runs in the router");
ABSL_FLAG(std::string, tokenizer, "", "SentencePiece model (default: <model>/tokenizer.model)");
ABSL_FLAG(std::string, backend, "cpu", "cpu, cuda or auto");
ABSL_FLAG(int, max_running, 32, "sequences in the running batch");
ABSL_FLAG(int, max_waiting, 256, "queued requests before RESOURCE_EXHAUSTED");
ABSL_FLAG(int64_t, max_step_tokens, 256, "prompt + decode tokens per engine step");
ABSL_FLAG(int, max_new_tokens_limit, 4096, "largest accepted sampling.max_new_tokens");
ABSL_FLAG(int, expert_timeout_ms, 30000, "deadline of one expert call");
ABSL_FLAG(int, health_interval_ms, 2000,
          "how often readiness re-checks the expert shards (and waits for them)");
ABSL_FLAG(int, metrics_port, -1, "serve Prometheus /metrics on this port (0: pick one, -1: off)");
ABSL_FLAG(int64_t, state_budget_mb, 4096, "memory for sequence state (KV cache, conv/SSM state)");
ABSL_FLAG(std::string, kv_cache_dtype, "f32",
          "KV cache element type: f32 or bf16 (half the bytes)");
ABSL_FLAG(std::string, expert_weights, "stored",
          "in-process experts: stored (checkpoint dtype) or int8 (per-row scales)");
ABSL_FLAG(int, drain_seconds, 30, "on SIGTERM, time given to calls in flight");
ABSL_FLAG(bool, overlap_experts, true,
          "with --experts/--placement: run each step as two micro-batches whose expert calls "
          "overlap the other's mixer (turn off when the expert workers share this host's cores)");

namespace {

std::atomic<bool> g_stop{false};

void HandleSignal(int) { g_stop.store(true); }

}  // namespace

int main(int argc, char** argv) {
  jamba::TuneProcess();
  absl::SetProgramUsageMessage("jamba-router --model DIR [--experts host:port,...] [flags]");
  absl::ParseCommandLine(argc, argv);

  jamba::router::RouterOptions options;
  options.model_dir = absl::GetFlag(FLAGS_model);
  options.listen_address = absl::GetFlag(FLAGS_host);
  options.port = absl::GetFlag(FLAGS_port);
  options.backend = absl::GetFlag(FLAGS_backend);
  options.tokenizer_path = absl::GetFlag(FLAGS_tokenizer);
  options.placement_path = absl::GetFlag(FLAGS_placement);
  for (absl::string_view shard :
       absl::StrSplit(absl::GetFlag(FLAGS_experts), ',', absl::SkipEmpty())) {
    options.expert_shards.push_back(absl::StrSplit(shard, '|', absl::SkipEmpty()));
  }
  options.mixer_targets = absl::StrSplit(absl::GetFlag(FLAGS_mixers), ',', absl::SkipEmpty());
  options.engine.max_running = absl::GetFlag(FLAGS_max_running);
  options.engine.max_waiting = absl::GetFlag(FLAGS_max_waiting);
  options.engine.max_step_tokens = absl::GetFlag(FLAGS_max_step_tokens);
  options.max_new_tokens_limit = absl::GetFlag(FLAGS_max_new_tokens_limit);
  options.expert_timeout = absl::Milliseconds(absl::GetFlag(FLAGS_expert_timeout_ms));
  options.health_interval = absl::Milliseconds(absl::GetFlag(FLAGS_health_interval_ms));
  options.engine.state_budget_bytes = absl::GetFlag(FLAGS_state_budget_mb) << 20;
  absl::StatusOr<jamba::DType> kv_dtype =
      jamba::model::ParseKvCacheDType(absl::GetFlag(FLAGS_kv_cache_dtype));
  absl::StatusOr<jamba::model::ExpertWeights> expert_weights =
      jamba::model::ParseExpertWeights(absl::GetFlag(FLAGS_expert_weights));
  for (const absl::Status& s : {kv_dtype.status(), expert_weights.status()}) {
    if (!s.ok()) {
      std::fprintf(stderr, "jamba-router: %s\n", std::string(s.message()).c_str());
      return 1;
    }
  }
  options.engine.kv_cache_dtype = *kv_dtype;
  options.expert_weights = *expert_weights;
  options.overlap_expert_calls = absl::GetFlag(FLAGS_overlap_experts);
  options.metrics_address = absl::GetFlag(FLAGS_host);
  options.metrics_port = absl::GetFlag(FLAGS_metrics_port);
  options.health_port = jamba::security::HealthPortFromFlags();
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      jamba::security::PublicServerCredentialsFromFlags();
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> internal_credentials =
      jamba::security::InternalChannelCredentialsFromFlags();
  for (const absl::Status& status : {credentials.status(), internal_credentials.status()}) {
    if (!status.ok()) {
      std::fprintf(stderr, "jamba-router: %s\n", std::string(status.message()).c_str());
      return 1;
    }
  }
  options.credentials = *std::move(credentials);
  options.internal_credentials = *std::move(internal_credentials);

  absl::StatusOr<std::unique_ptr<jamba::router::RouterServer>> server =
      jamba::router::RouterServer::Start(options);
  if (!server.ok()) {
    std::fprintf(stderr, "jamba-router: %s\n", server.status().ToString().c_str());
    return 1;
  }
  std::printf("jamba-router listening on %s:%d\n", options.listen_address.c_str(),
              (*server)->port());
  if ((*server)->metrics_port() > 0) {
    std::printf("jamba-router metrics on %s:%d\n", options.listen_address.c_str(),
                (*server)->metrics_port());
  }
  if ((*server)->health_port() > 0) {
    std::printf("jamba-router health on %s:%d\n", options.listen_address.c_str(),
                (*server)->health_port());
  }
  std::fflush(stdout);

  std::signal(SIGTERM, HandleSignal);
  std::signal(SIGINT, HandleSignal);
  while (!g_stop.load() && !(*server)->failed()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if ((*server)->failed()) {
    std::fprintf(stderr, "jamba-router: exiting after a fatal engine error\n");
    return 3;
  }
  std::fprintf(stderr, "jamba-router: draining (up to %d s)\n", absl::GetFlag(FLAGS_drain_seconds));
  const bool drained = (*server)->Drain(absl::Seconds(absl::GetFlag(FLAGS_drain_seconds)));
  std::fprintf(stderr, "jamba-router: stopped%s\n", drained ? "" : " (calls were cut off)");
  return drained ? 0 : 2;
}
