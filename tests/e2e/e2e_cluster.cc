#include "tests/e2e/e2e_cluster.h"

#include <grpcpp/grpcpp.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "core/status_macros.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace jamba::testing {

absl::StatusOr<std::string> MakeModelVariant(const std::string& source,
                                             const std::string& config_overrides) {
  static int counter = 0;
  const std::string dir =
      absl::StrCat(::testing::TempDir(), "/model_variant_", getpid(), "_", counter++);
  std::filesystem::create_directories(dir);
  for (const auto& entry : std::filesystem::directory_iterator(source)) {
    const std::string name = entry.path().filename().string();
    if (name == "config.json") continue;
    std::filesystem::create_symlink(std::filesystem::absolute(entry.path()), dir + "/" + name);
  }
  std::ifstream in(source + "/config.json");
  nlohmann::json config = nlohmann::json::parse(in, nullptr, false);
  nlohmann::json overrides = nlohmann::json::parse(config_overrides, nullptr, false);
  if (!config.is_object() || !overrides.is_object()) {
    return absl::InvalidArgumentError("bad config or overrides");
  }
  config.merge_patch(overrides);
  std::ofstream(dir + "/config.json") << config.dump(2);
  return dir;
}

absl::Status LocalCluster::Start(const std::string& model_dir, int workers,
                                 const std::vector<std::string>& router_flags, int replicas,
                                 int mixers) {
  std::ifstream in(model_dir + "/config.json");
  nlohmann::json config = nlohmann::json::parse(in, nullptr, false);
  const int num_experts = config.value("num_experts", 1);
  std::vector<std::string> shards;
  for (int w = 0; w < workers; ++w) {
    std::vector<std::string> experts;
    for (int e = w; e < num_experts; e += workers) experts.push_back(absl::StrCat(e));
    std::vector<std::string> targets;
    for (int r = 0; r < replicas; ++r) {
      auto worker = std::make_unique<Subprocess>();
      std::vector<std::string> argv = {BinaryDir() + "/expert_worker/jamba-expert-worker",
                                       "--model",
                                       model_dir,
                                       "--port",
                                       "0",
                                       "--experts",
                                       absl::StrJoin(experts, ",")};
      RETURN_IF_ERROR(worker->Start(argv));
      ASSIGN_OR_RETURN(std::string address, worker->WaitForAddress());
      argv[4] = address.substr(address.rfind(':') + 1);  // a restart keeps the port
      worker_argv_.push_back(std::move(argv));
      worker_addresses_.push_back(address);
      targets.push_back(address);
      workers_.push_back(std::move(worker));
    }
    shards.push_back(absl::StrJoin(targets, "|"));
  }
  for (int m = 0; m < mixers; ++m) {
    auto mixer = std::make_unique<Subprocess>();
    std::vector<std::string> mixer_argv = {BinaryDir() + "/mixer_worker/jamba-mixer-worker",
                                           "--model", model_dir, "--port", "0"};
    if (workers > 0) {  // else its experts run in-process
      mixer_argv.push_back("--experts");
      mixer_argv.push_back(absl::StrJoin(shards, ","));
    }
    mixer_argv.insert(mixer_argv.end(), mixer_flags_.begin(), mixer_flags_.end());
    RETURN_IF_ERROR(mixer->Start(mixer_argv));
    ASSIGN_OR_RETURN(std::string address, mixer->WaitForAddress());
    mixer_addresses_.push_back(address);
    mixers_.push_back(std::move(mixer));
  }
  for (const std::string& address : mixer_addresses_) {
    RETURN_IF_ERROR(
        WaitHealthServing(address, "jamba.internal.v1.MixerService", absl::Seconds(60)));
  }
  std::vector<std::string> argv = {BinaryDir() + "/router/jamba-router", "--model", model_dir,
                                   "--port", "0"};
  if (mixers > 0) {
    argv.push_back("--mixers");
    argv.push_back(absl::StrJoin(mixer_addresses_, ","));
  } else if (workers > 0) {
    argv.push_back("--experts");
    argv.push_back(absl::StrJoin(shards, ","));
  }
  argv.insert(argv.end(), router_flags.begin(), router_flags.end());
  router_ = std::make_unique<Subprocess>();
  RETURN_IF_ERROR(router_->Start(argv));
  ASSIGN_OR_RETURN(router_address_, router_->WaitForAddress());
  const absl::Status serving = WaitServing(absl::Seconds(60));
  if (serving.ok()) return serving;
  // Say why: whether the router still runs, and what it printed.
  const bool running = router_->running();
  return absl::Status(serving.code(), absl::StrCat(serving.message(), "; the router ",
                                                   running ? "still runs" : "has exited",
                                                   ", its log:\n", router_->log()));
}

absl::Status LocalCluster::RestartWorker(int i) {
  if (workers_[i]->running()) return absl::FailedPreconditionError("the worker still runs");
  auto worker = std::make_unique<Subprocess>();
  RETURN_IF_ERROR(worker->Start(worker_argv_[i]));
  ASSIGN_OR_RETURN(std::string address, worker->WaitForAddress());
  if (address != worker_addresses_[i]) {
    return absl::InternalError(
        absl::StrCat("restarted on ", address, ", not ", worker_addresses_[i]));
  }
  workers_[i] = std::move(worker);
  return absl::OkStatus();
}

void LocalCluster::Stop() {
  if (router_) router_->Stop();
  for (auto& mixer : mixers_) mixer->Stop();
  for (auto& worker : workers_) worker->Stop();
}

std::unique_ptr<jamba::v1::JambaService::Stub> LocalCluster::NewStub() const {
  return jamba::v1::JambaService::NewStub(
      grpc::CreateChannel(router_address_, grpc::InsecureChannelCredentials()));
}

absl::Status LocalCluster::WaitServing(absl::Duration timeout) const {
  return WaitHealth(true, timeout);
}

absl::Status LocalCluster::WaitHealth(bool serving, absl::Duration timeout) const {
  return WaitHealthServing(router_address_, "jamba.v1.JambaService", timeout, serving);
}

absl::Status WaitHealthServing(const std::string& address, const std::string& service,
                               absl::Duration timeout, bool serving) {
  auto health = grpc::health::v1::Health::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  const absl::Time deadline = absl::Now() + timeout;
  std::string last;
  while (absl::Now() < deadline) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(1));
    grpc::health::v1::HealthCheckRequest request;
    request.set_service(service);
    grpc::health::v1::HealthCheckResponse response;
    grpc::Status status = health->Check(&context, request, &response);
    const bool is_serving =
        status.ok() && response.status() == grpc::health::v1::HealthCheckResponse::SERVING;
    if (status.ok() && is_serving == serving) return absl::OkStatus();
    last = status.ok()
               ? grpc::health::v1::HealthCheckResponse::ServingStatus_Name(response.status())
               : status.error_message();
    absl::SleepFor(absl::Milliseconds(50));
  }
  return absl::DeadlineExceededError(absl::StrCat(address, " health of ", service, " still ", last,
                                                  " after ", absl::FormatDuration(timeout)));
}

}  // namespace jamba::testing
