#include "router/router_server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>

#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/status_macros.h"
#include "mixer_worker/in_process_mixer.h"
#include "mixer_worker/remote_mixers.h"
#include "model/config.h"
#include "router/tokenizer_sentencepiece.h"
#include "rpc/expert_placement.h"

namespace jamba::router {
namespace {

constexpr char kServiceName[] = "jamba.v1.JambaService";

absl::StatusOr<kernels::BackendKind> ParseBackend(const std::string& name) {
  if (name == "cpu") return kernels::BackendKind::kCpu;
  if (name == "cpu-ref") return kernels::BackendKind::kCpuReference;
  if (name == "cuda") return kernels::BackendKind::kCuda;
  if (name == "auto") return kernels::BackendKind::kAuto;
  return absl::InvalidArgumentError(absl::StrCat("--backend: unknown backend '", name, "'"));
}

void Log(const std::string& line) {
  std::fprintf(stderr, "jamba-router: %s\n", line.c_str());
  std::fflush(stderr);
}

}  // namespace

absl::StatusOr<std::unique_ptr<RouterServer>> RouterServer::Start(const RouterOptions& options) {
  std::unique_ptr<RouterServer> r(new RouterServer());
  if (options.model_dir.empty()) return absl::InvalidArgumentError("--model is required");
  mixer::MixerOptions mixer_options;
  mixer_options.model_dir = options.model_dir;
  ASSIGN_OR_RETURN(mixer_options.backend, ParseBackend(options.backend));
  mixer_options.expert_timeout = options.expert_timeout;
  mixer_options.expert_credentials = options.internal_credentials;
  mixer_options.model_options.kv_cache_dtype = options.engine.kv_cache_dtype;
  mixer_options.model_options.expert_weights = options.expert_weights;
  mixer_options.model_options.overlap_expert_calls = options.overlap_expert_calls;
  Metrics* metrics = &r->metrics_;
  mixer_options.on_round_trip = [metrics](const std::string& shard, absl::Duration rtt,
                                          absl::Duration worker) {
    metrics->ObserveExpertRoundTrip(shard, absl::ToDoubleSeconds(rtt),
                                    absl::ToDoubleSeconds(worker));
  };
  mixer_options.on_routed = [metrics](int layer, int expert, int64_t rows) {
    metrics->CountRoutedTokens(layer, expert, rows);
  };
  ASSIGN_OR_RETURN(model::JambaConfig config, model::LoadJambaConfig(options.model_dir));
  if (!options.mixer_targets.empty()) {
    if (!options.placement_path.empty() || !options.expert_shards.empty()) {
      return absl::InvalidArgumentError(
          "--mixers: the mixer workers call the experts; drop --experts and --placement");
    }
    Log(absl::StrCat("using ", options.mixer_targets.size(), " mixer worker target(s)"));
    mixer::RemoteMixersOptions remote;
    remote.on_routed = mixer_options.on_routed;
    remote.credentials = options.internal_credentials;
    ASSIGN_OR_RETURN(r->mixer_, mixer::RemoteMixers::Create(options.model_dir, config,
                                                            options.mixer_targets, remote));
  } else if (!options.placement_path.empty()) {
    ASSIGN_OR_RETURN(rpc::ExpertPlacement placement,
                     rpc::ExpertPlacement::Load(options.placement_path, config));
    mixer_options.placement = std::make_shared<rpc::ExpertPlacement>(std::move(placement));
  } else if (!options.expert_shards.empty()) {
    ASSIGN_OR_RETURN(rpc::ExpertPlacement placement,
                     rpc::ExpertPlacement::RoundRobin(config, options.expert_shards));
    mixer_options.placement = std::make_shared<rpc::ExpertPlacement>(std::move(placement));
  }
  if (r->mixer_ == nullptr) {
    Log(absl::StrCat("loading ", options.model_dir, " (", config.num_hidden_layers, " layers, ",
                     mixer_options.placement ? "remote" : "in-process", " experts)"));
    const absl::Time load_start = absl::Now();
    ASSIGN_OR_RETURN(std::unique_ptr<mixer::MixerExecutor> executor,
                     mixer::MixerExecutor::Create(mixer_options));
    Log(absl::StrCat("loaded in ", absl::ToInt64Milliseconds(absl::Now() - load_start), " ms"));
    r->mixer_ = std::make_unique<mixer::InProcessMixer>(std::move(executor));
  }

  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer =
      options.tokenizer_path.empty() ? LoadTokenizerForModel(options.model_dir)
                                     : absl::StatusOr<std::unique_ptr<Tokenizer>>(
                                           SentencePieceTokenizer::Load(options.tokenizer_path));
  if (tokenizer.ok()) {
    r->tokenizer_ = *std::move(tokenizer);
    Log(absl::StrCat("tokenizer with ", r->tokenizer_->vocab_size(), " tokens"));
  } else if (options.tokenizer_path.empty() && absl::IsNotFound(tokenizer.status())) {
    Log("no tokenizer in the checkpoint: accepting token ids only");
  } else {
    return tokenizer.status();
  }

  r->engine_ =
      std::make_unique<Engine>(r->mixer_.get(), r->tokenizer_.get(), options.engine, &r->metrics_);
  Log(r->engine_->CapacitySummary());
  if (options.metrics_port >= 0) {
    RETURN_IF_ERROR(
        r->metrics_.Serve(absl::StrCat(options.metrics_address, ":", options.metrics_port)));
    Log(absl::StrCat("metrics on http://", options.metrics_address, ":", r->metrics_.port(),
                     "/metrics"));
  }
  RequestLimits limits;
  limits.context_limit = config.max_position_embeddings;
  limits.max_new_tokens = static_cast<uint32_t>(options.max_new_tokens_limit);
  r->service_ = std::make_unique<JambaServiceImpl>(r->engine_.get(), r->mixer_.get(),
                                                   r->tokenizer_.get(), limits, &r->metrics_);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  RETURN_IF_ERROR(r->health_.ServeHealthPort(options.listen_address, options.health_port));
  grpc::ServerBuilder builder;
  builder.AddListeningPort(
      absl::StrCat(options.listen_address, ":", options.port),
      options.credentials != nullptr ? options.credentials : grpc::InsecureServerCredentials(),
      &r->port_);
  builder.RegisterService(r->service_.get());
  builder.SetMaxReceiveMessageSize(4 << 20);
  r->server_ = builder.BuildAndStart();
  if (r->server_ == nullptr || r->port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.listen_address, ":", options.port));
  }
  r->health_.SetMainServer(r->server_.get());
  r->health_.Set("", true);
  r->SetServing(false);
  Log(options.mixer_targets.empty() ? "waiting for the expert shards"
                                    : "waiting for the mixer workers");
  absl::Status experts = r->mixer_->CheckReady(absl::Seconds(60));
  if (!experts.ok()) Log(absl::StrCat("not ready: ", experts.ToString()));
  r->SetServing(experts.ok());
  if (experts.ok()) Log("serving");
  r->monitor_ = std::thread(
      [raw = r.get(), interval = options.health_interval] { raw->MonitorHealth(interval); });
  return r;
}

RouterServer::~RouterServer() {
  if (!stop_monitor_.HasBeenNotified()) stop_monitor_.Notify();
  if (monitor_.joinable()) monitor_.join();
  if (server_ != nullptr) server_->Shutdown(std::chrono::system_clock::now());
  engine_.reset();
}

// Readiness is the service's status: weights loaded and every expert shard
// answering. "" (liveness) says only that this process works, so one lost
// shard does not get every router restarted; it turns NOT_SERVING on drain.
void RouterServer::SetServing(bool serving) { health_.Set(kServiceName, serving); }

void RouterServer::MonitorHealth(absl::Duration interval) {
  bool serving = true;
  while (!stop_monitor_.WaitForNotificationWithTimeout(interval)) {
    const absl::Status engine = mixer_->Health();
    if (!engine.ok()) {
      SetServing(false);
      Log(absl::StrCat("fatal: the engine is broken: ", engine.ToString()));
      failed_.Notify();
      return;
    }
    const absl::Status experts = mixer_->CheckReady(interval);
    if (experts.ok() != serving) {
      serving = experts.ok();
      Log(serving ? "ready again: serving" : absl::StrCat("not serving: ", experts.ToString()));
    }
    SetServing(serving && mixer_->Health().ok());
  }
}

bool RouterServer::Drain(absl::Duration budget) {
  if (!stop_monitor_.HasBeenNotified()) stop_monitor_.Notify();
  if (monitor_.joinable()) monitor_.join();
  health_.Set("", false);
  SetServing(false);
  engine_->Shutdown();
  const absl::Time deadline = absl::Now() + budget;
  while (absl::Now() < deadline && (engine_->num_running() > 0 || engine_->num_waiting() > 0)) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  const bool drained = engine_->num_running() == 0 && engine_->num_waiting() == 0;
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  return drained;
}

}  // namespace jamba::router
