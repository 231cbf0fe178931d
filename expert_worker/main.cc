// jamba-expert-worker: serves a subset of a Jamba checkpoint's MoE experts
// over jamba.internal.v1.ExpertService, with grpc.health.v1 and reflection.
//
//   jamba-expert-worker --model DIR --experts 0-7 [--port 0] [--host 127.0.0.1]
//   jamba-expert-worker --model DIR --placement FILE --shard NAME
//
// Loading progress goes to stderr; once listening, stdout gets exactly one
// line "jamba-expert-worker listening on HOST:PORT" (then, with
// --health_port, "jamba-expert-worker health on HOST:PORT"). TLS, mutual
// TLS and the plaintext health port: the flags in security/server_flags.h.
// SIGTERM or SIGINT:
// health NOT_SERVING at once, no new streams, open streams end once the
// requests they have read are answered; exit 0, or 2 if streams were still
// open at --drain_timeout and were cancelled. Bad flags or checkpoints: one
// line on stderr and exit code 1.
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <climits>
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/process_tuning.h"
#include "core/status_macros.h"
#include "expert_worker/expert_service.h"
#include "kernels/backend.h"
#include "model/checkpoint.h"
#include "model/jamba_model.h"
#include "model/local_experts.h"
#include "model/weight_loader.h"
#include "rpc/expert_placement.h"
#include "rpc/grpc_options.h"
#include "security/health_port.h"
#include "security/server_flags.h"

ABSL_FLAG(std::string, model, "", "checkpoint directory (config.json + safetensors)");
ABSL_FLAG(std::string, host, "127.0.0.1", "address to listen on");
ABSL_FLAG(int, port, 0, "port to listen on (0: pick a free one)");
ABSL_FLAG(std::string, experts, "", "experts of every MoE layer to host, e.g. 0-7 or all");
ABSL_FLAG(std::string, placement, "", "placement JSON file (with --shard)");
ABSL_FLAG(std::string, shard, "", "this worker's shard in --placement");
ABSL_FLAG(std::string, backend, "cpu", "cpu (fast), cpu-ref (reference), cuda or auto");
ABSL_FLAG(std::string, expert_weights, "stored",
          "stored (checkpoint dtype) or int8 (per-row scales, quantised at load)");
ABSL_FLAG(absl::Duration, max_connection_age, absl::Milliseconds(jamba::rpc::kMaxConnectionAgeMs),
          "connections older than this get GOAWAY, so that clients re-resolve their target and "
          "find replicas added since");
ABSL_FLAG(absl::Duration, drain_timeout, absl::Seconds(10),
          "on SIGTERM, how long calls in flight may take before they are cancelled");

namespace jamba::expert {
namespace {

constexpr char kServiceName[] = "jamba.internal.v1.ExpertService";

absl::StatusOr<kernels::BackendKind> ParseBackend(const std::string& name) {
  if (name == "cpu") return kernels::BackendKind::kCpu;
  if (name == "cpu-ref") return kernels::BackendKind::kCpuReference;
  if (name == "cuda") return kernels::BackendKind::kCuda;
  if (name == "auto") return kernels::BackendKind::kAuto;
  return absl::InvalidArgumentError(
      absl::StrCat("--backend: '", name, "' is not one of cpu, cuda, auto"));
}

// The hosted experts from --experts or --placement/--shard; sets the name.
absl::StatusOr<model::LocalExperts::HostPredicate> HostedExperts(const model::JambaConfig& config,
                                                                 std::string* shard_name) {
  const std::string experts = absl::GetFlag(FLAGS_experts);
  const std::string placement = absl::GetFlag(FLAGS_placement);
  const std::string shard = absl::GetFlag(FLAGS_shard);
  if (experts.empty() == placement.empty()) {
    return absl::InvalidArgumentError("give either --experts or --placement with --shard");
  }
  if (!experts.empty()) {
    *shard_name = shard.empty() ? absl::StrCat("experts=", experts) : shard;
    return rpc::ParseExpertsFlag(experts, config);
  }
  if (shard.empty()) return absl::InvalidArgumentError("--placement needs --shard NAME");
  *shard_name = shard;
  ASSIGN_OR_RETURN(rpc::ExpertPlacement map, rpc::ExpertPlacement::Load(placement, config));
  return map.HostedBy(shard);
}

std::string HostPort(const std::string& host, int port) {
  const bool ipv6 = host.find(':') != std::string::npos && host.front() != '[';
  return ipv6 ? absl::StrCat("[", host, "]:", port) : absl::StrCat(host, ":", port);
}

// Serves until a stop signal, then drains; *cut_off tells whether the drain
// had to cancel streams.
absl::Status Serve(const sigset_t& stop_signals, bool* cut_off) {
  const std::string dir = absl::GetFlag(FLAGS_model);
  const int port = absl::GetFlag(FLAGS_port);
  if (dir.empty()) return absl::InvalidArgumentError("--model DIR is required");
  if (port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("--port ", port, " is outside [0, 65535]"));
  }
  ASSIGN_OR_RETURN(kernels::BackendKind kind, ParseBackend(absl::GetFlag(FLAGS_backend)));
  ASSIGN_OR_RETURN(std::unique_ptr<model::Checkpoint> checkpoint, model::Checkpoint::Open(dir));
  const model::JambaConfig& config = checkpoint->config();
  std::string shard_name;
  ASSIGN_OR_RETURN(model::LocalExperts::HostPredicate hosts, HostedExperts(config, &shard_name));

  int total = 0;
  for (int layer = 0; layer < config.num_hidden_layers; ++layer) {
    for (int e = 0; e < config.num_experts; ++e) total += hosts(layer, e) ? 1 : 0;
  }
  if (total == 0) return absl::InvalidArgumentError("this worker would host no expert");
  ASSIGN_OR_RETURN(std::unique_ptr<kernels::Backend> backend, kernels::CreateBackend(kind));
  const absl::Time start = absl::Now();
  int loaded = 0, last_layer = -1;
  auto with_progress = [&](int layer, int expert) {
    if (!hosts(layer, expert)) return false;
    if (layer != last_layer) {
      std::fprintf(stderr, "jamba-expert-worker: loading experts %d of %d (layer %d)\n", loaded,
                   total, layer);
      last_layer = layer;
    }
    ++loaded;
    return true;
  };
  ASSIGN_OR_RETURN(const model::ExpertWeights expert_weights,
                   model::ParseExpertWeights(absl::GetFlag(FLAGS_expert_weights)));
  model::WeightLoader loader(checkpoint.get(), backend.get());
  ASSIGN_OR_RETURN(std::unique_ptr<model::LocalExperts> experts,
                   model::LocalExperts::Load(loader, backend.get(), with_progress, expert_weights));
  ASSIGN_OR_RETURN(int64_t weight_bytes, ExpertWeightBytes(*checkpoint, hosts));
  std::fprintf(stderr, "jamba-expert-worker: loaded %d experts (%.1f MiB of weights) in %s\n",
               total, weight_bytes / 1048576.0, absl::FormatDuration(absl::Now() - start).c_str());

  ExpertServiceOptions options;
  options.shard_name = shard_name;
  options.weight_bytes = weight_bytes;
  ExpertServiceImpl service(config, experts.get(), options);
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> credentials,
                   security::InternalServerCredentialsFromFlags());
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  const std::string host = absl::GetFlag(FLAGS_host);
  security::HealthStatus health;
  RETURN_IF_ERROR(health.ServeHealthPort(host, security::HealthPortFromFlags()));
  grpc::ServerBuilder builder;
  int bound_port = 0;
  builder.AddListeningPort(HostPort(host, port), credentials, &bound_port);
  const absl::Duration max_age = absl::GetFlag(FLAGS_max_connection_age);
  if (max_age < absl::Milliseconds(100)) {
    return absl::InvalidArgumentError("--max_connection_age must be at least 100ms");
  }
  rpc::ConfigureInternalServer(
      &builder, static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(max_age), INT32_MAX)));
  service.RegisterWith(&builder);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || bound_port == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", HostPort(host, port)));
  }
  service.Start();
  health.SetMainServer(server.get());
  health.Set("", true);
  health.Set(kServiceName, true);
  std::printf("jamba-expert-worker listening on %s\n", HostPort(host, bound_port).c_str());
  if (health.port() > 0) {
    std::printf("jamba-expert-worker health on %s\n", HostPort(host, health.port()).c_str());
  }
  std::fflush(stdout);

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  std::fprintf(stderr, "jamba-expert-worker: signal %d, shutting down\n", signal_number);
  health.Set("", false);
  health.Set(kServiceName, false);
  service.BeginDrain();
  const absl::Time deadline = absl::Now() + absl::GetFlag(FLAGS_drain_timeout);
  *cut_off = !service.WaitForStreams(deadline);
  server->Shutdown(absl::ToChronoTime(deadline));
  server->Wait();
  service.Stop();
  std::fprintf(stderr, "jamba-expert-worker: stopped%s\n",
               *cut_off ? " (streams were cut off at --drain_timeout)" : "");
  return absl::OkStatus();
}

}  // namespace
}  // namespace jamba::expert

int main(int argc, char** argv) {
  jamba::TuneProcess();
  // Block the stop signals before any thread starts, so that every thread
  // inherits the mask and only sigwait in Serve sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);  // a closed stdout must not kill the worker

  absl::SetProgramUsageMessage(
      "serves MoE experts of a Jamba checkpoint.\n"
      "  jamba-expert-worker --model DIR --experts 0-7 [--port 0] [--host "
      "127.0.0.1]\n"
      "  jamba-expert-worker --model DIR --placement FILE --shard NAME");
  std::vector<char*> rest = absl::ParseCommandLine(argc, argv);
  if (rest.size() > 1) {
    std::fprintf(stderr, "jamba-expert-worker: unexpected argument '%s'\n", rest[1]);
    return 1;
  }
  bool cut_off = false;
  const absl::Status status = jamba::expert::Serve(stop_signals, &cut_off);
  if (!status.ok()) {
    std::fprintf(stderr, "jamba-expert-worker: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  return cut_off ? 2 : 0;
}
