// jamba-mixer-worker: one data-parallel mixer replica. Holds the mixer half
// of a Jamba checkpoint and the state of the sequences a router opens on
// it, calls the expert-worker shards itself, and serves
// jamba.internal.v1.MixerService with grpc.health.v1 and reflection.
//
//   jamba-mixer-worker --model DIR --experts HOST:PORT,... [--port 0]
//   jamba-mixer-worker --model DIR --placement FILE
//   jamba-mixer-worker --model DIR          (experts in this process)
//
// Once listening, stdout gets exactly one line "jamba-mixer-worker listening
// on HOST:PORT" (then, with --health_port, "jamba-mixer-worker health on
// HOST:PORT"). TLS and mutual TLS, both on this worker's port and towards
// the expert workers, and the plaintext health port: the flags in
// security/server_flags.h. Health "jamba.internal.v1.MixerService" is SERVING while
// every expert shard answers. SIGTERM or SIGINT: NOT_SERVING at once, new
// sequences refused (UNAVAILABLE: the router opens them elsewhere), open
// ones go on; exit 0 once none is open, or 2 if some still were at
// --drain_timeout (their sessions are cancelled). Bad flags or checkpoints:
// one line on stderr and exit code 1. When the mixer itself breaks (a fault
// of its backend, not bad input or a lost shard): NOT_SERVING, also for
// liveness, and exit code 3 at once.
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/process_tuning.h"
#include "core/status_macros.h"
#include "mixer_worker/mixer_executor.h"
#include "mixer_worker/mixer_service.h"
#include "model/config.h"
#include "rpc/expert_placement.h"
#include "rpc/grpc_options.h"
#include "security/health_port.h"
#include "security/server_flags.h"

ABSL_FLAG(std::string, model, "", "checkpoint directory (config.json + safetensors)");
ABSL_FLAG(std::string, host, "127.0.0.1", "address to listen on");
ABSL_FLAG(int, port, 0, "port to listen on (0: pick a free one)");
ABSL_FLAG(std::string, experts, "",
          "expert shards: comma-separated shards, each a |-separated list of replica targets; "
          "expert e of every MoE layer goes to shard e mod S");
ABSL_FLAG(std::string, placement, "", "expert placement map (JSON) instead of --experts");
ABSL_FLAG(std::string, backend, "cpu", "cpu (fast), cpu-ref (reference), cuda or auto");
ABSL_FLAG(int, expert_timeout_ms, 30000, "deadline of one expert call");
ABSL_FLAG(std::string, kv_cache_dtype, "f32",
          "KV cache element type: f32 or bf16 (half the bytes)");
ABSL_FLAG(std::string, expert_weights, "stored",
          "in-process experts: stored (checkpoint dtype) or int8 (per-row scales)");
ABSL_FLAG(bool, overlap_experts, true,
          "with remote experts: run each step as two micro-batches whose expert calls overlap "
          "the other's mixer (turn off when the expert workers share this host's cores)");
ABSL_FLAG(absl::Duration, drain_timeout, absl::Seconds(30),
          "on SIGTERM, how long open sequences may take to finish");

namespace jamba::mixer {
namespace {

constexpr absl::Duration kHealthInterval = absl::Seconds(2);

absl::StatusOr<kernels::BackendKind> ParseBackend(const std::string& name) {
  if (name == "cpu") return kernels::BackendKind::kCpu;
  if (name == "cpu-ref") return kernels::BackendKind::kCpuReference;
  if (name == "cuda") return kernels::BackendKind::kCuda;
  if (name == "auto") return kernels::BackendKind::kAuto;
  return absl::InvalidArgumentError(
      absl::StrCat("--backend: '", name, "' is not one of cpu, cpu-ref, cuda, auto"));
}

// The expert shards of --experts or --placement; null (experts in this
// process, as the router does without them) when neither is given.
absl::StatusOr<std::shared_ptr<const rpc::ExpertPlacement>> Placement(
    const model::JambaConfig& config) {
  const std::string experts = absl::GetFlag(FLAGS_experts);
  const std::string path = absl::GetFlag(FLAGS_placement);
  if (!experts.empty() && !path.empty()) {
    return absl::InvalidArgumentError("give --experts or --placement, not both");
  }
  if (experts.empty() && path.empty()) return nullptr;
  if (!path.empty()) {
    ASSIGN_OR_RETURN(rpc::ExpertPlacement map, rpc::ExpertPlacement::Load(path, config));
    return std::make_shared<const rpc::ExpertPlacement>(std::move(map));
  }
  std::vector<std::vector<std::string>> shards;
  for (absl::string_view shard : absl::StrSplit(experts, ',', absl::SkipEmpty())) {
    shards.push_back(absl::StrSplit(shard, '|', absl::SkipEmpty()));
  }
  ASSIGN_OR_RETURN(rpc::ExpertPlacement map, rpc::ExpertPlacement::RoundRobin(config, shards));
  return std::make_shared<const rpc::ExpertPlacement>(std::move(map));
}

std::string HostPort(const std::string& host, int port) {
  const bool ipv6 = host.find(':') != std::string::npos && host.front() != '[';
  return ipv6 ? absl::StrCat("[", host, "]:", port) : absl::StrCat(host, ":", port);
}

void Log(const std::string& line) {
  std::fprintf(stderr, "jamba-mixer-worker: %s\n", line.c_str());
  std::fflush(stderr);
}

// Serves until a stop signal, then drains; *cut_off tells whether open
// sequences had to be cut off.
absl::Status Serve(const sigset_t& stop_signals, bool* cut_off, std::atomic<bool>* fatal) {
  const std::string dir = absl::GetFlag(FLAGS_model);
  const int port = absl::GetFlag(FLAGS_port);
  if (dir.empty()) return absl::InvalidArgumentError("--model DIR is required");
  if (port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("--port ", port, " is outside [0, 65535]"));
  }
  MixerOptions options;
  options.model_dir = dir;
  ASSIGN_OR_RETURN(options.backend, ParseBackend(absl::GetFlag(FLAGS_backend)));
  ASSIGN_OR_RETURN(options.model_options.kv_cache_dtype,
                   model::ParseKvCacheDType(absl::GetFlag(FLAGS_kv_cache_dtype)));
  ASSIGN_OR_RETURN(options.model_options.expert_weights,
                   model::ParseExpertWeights(absl::GetFlag(FLAGS_expert_weights)));
  options.model_options.overlap_expert_calls = absl::GetFlag(FLAGS_overlap_experts);
  ASSIGN_OR_RETURN(model::JambaConfig config, model::LoadJambaConfig(dir));
  ASSIGN_OR_RETURN(options.placement, Placement(config));
  options.expert_timeout = absl::Milliseconds(absl::GetFlag(FLAGS_expert_timeout_ms));
  ASSIGN_OR_RETURN(options.expert_credentials, security::InternalChannelCredentialsFromFlags());
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> credentials,
                   security::InternalServerCredentialsFromFlags());
  // Routed rows go back to the router with each step (set once the service
  // exists; nothing is routed before it serves).
  MixerServiceImpl* counter = nullptr;
  options.on_routed = [&counter](int layer, int expert, int64_t rows) {
    if (counter != nullptr) counter->CountRouted(layer, expert, rows);
  };
  Log(absl::StrCat("loading ", dir, " (", config.num_hidden_layers, " layers, ",
                   options.placement != nullptr ? "mixer half" : "with every expert in-process",
                   ")"));
  const absl::Time load_start = absl::Now();
  ASSIGN_OR_RETURN(std::unique_ptr<MixerExecutor> executor, MixerExecutor::Create(options));
  Log(absl::StrCat("loaded in ", absl::ToInt64Milliseconds(absl::Now() - load_start), " ms"));

  MixerServiceImpl service(executor.get());
  counter = &service;
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  const std::string host = absl::GetFlag(FLAGS_host);
  security::HealthStatus health;
  RETURN_IF_ERROR(health.ServeHealthPort(host, security::HealthPortFromFlags()));
  grpc::ServerBuilder builder;
  int bound_port = 0;
  builder.AddListeningPort(HostPort(host, port), credentials, &bound_port);
  rpc::ConfigureInternalServer(&builder);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || bound_port == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", HostPort(host, port)));
  }
  health.SetMainServer(server.get());
  health.Set("", true);
  health.Set(rpc::kMixerHealthService, false);
  std::printf("jamba-mixer-worker listening on %s\n", HostPort(host, bound_port).c_str());
  if (health.port() > 0) {
    std::printf("jamba-mixer-worker health on %s\n", HostPort(host, health.port()).c_str());
  }
  std::fflush(stdout);

  // Readiness follows the expert shards.
  absl::Notification stop_monitor;
  std::thread monitor([&] {
    bool ready = false;
    do {
      if (const absl::Status broken = executor->Health(); !broken.ok()) {
        // Not live any more: wake the main thread, which exits with 3.
        Log(absl::StrCat("fatal: the mixer is broken: ", broken.ToString()));
        service.SetExpertsReady(false);
        health.Set(rpc::kMixerHealthService, false);
        health.Set("", false);
        *fatal = true;
        kill(getpid(), SIGTERM);
        return;
      }
      const absl::Status experts = executor->CheckExperts(kHealthInterval);
      if (experts.ok() != ready) {
        ready = experts.ok();
        Log(ready ? "expert shards answer: serving"
                  : absl::StrCat("not serving: ", experts.ToString()));
      }
      service.SetExpertsReady(ready);
      health.Set(rpc::kMixerHealthService, ready);
    } while (!stop_monitor.WaitForNotificationWithTimeout(kHealthInterval));
  });

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  stop_monitor.Notify();
  monitor.join();
  if (*fatal) {
    // No drain: the sessions' state cannot be trusted any more.
    server->Shutdown(std::chrono::system_clock::now());
    server->Wait();
    Log("stopped after a fatal mixer error");
    return absl::OkStatus();
  }
  Log(absl::StrCat("signal ", signal_number, ", draining"));
  health.Set("", false);
  health.Set(rpc::kMixerHealthService, false);
  service.BeginDrain();
  *cut_off = !service.WaitForSequences(absl::Now() + absl::GetFlag(FLAGS_drain_timeout));
  // Ends the sessions (idle ones, or the cut-off ones' streams).
  server->Shutdown(std::chrono::system_clock::now());
  server->Wait();
  Log(*cut_off ? "stopped (sequences were cut off at --drain_timeout)" : "stopped");
  return absl::OkStatus();
}

}  // namespace
}  // namespace jamba::mixer

int main(int argc, char** argv) {
  jamba::TuneProcess();
  // Block the stop signals before any thread starts, so that only sigwait in
  // Serve sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  absl::SetProgramUsageMessage(
      "serves the mixer half of a Jamba checkpoint to routers.\n"
      "  jamba-mixer-worker --model DIR --experts HOST:PORT,... [--port 0] [--host 127.0.0.1]\n"
      "  jamba-mixer-worker --model DIR --placement FILE\n"
      "  jamba-mixer-worker --model DIR  (experts in this process)");
  std::vector<char*> rest = absl::ParseCommandLine(argc, argv);
  if (rest.size() > 1) {
    std::fprintf(stderr, "jamba-mixer-worker: unexpected argument '%s'\n", rest[1]);
    return 1;
  }
  bool cut_off = false;
  std::atomic<bool> fatal{false};
  const absl::Status status = jamba::mixer::Serve(stop_signals, &cut_off, &fatal);
  if (!status.ok()) {
    std::fprintf(stderr, "jamba-mixer-worker: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  if (fatal) return 3;
  return cut_off ? 2 : 0;
}
