#include "tests/expert_worker/worker_harness.h"

#include <cstdlib>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "core/check.h"
#include "model/weight_loader.h"
#include "rpc/grpc_options.h"

namespace jamba::testing {
namespace {

std::string FixtureDir(const std::string& name) {
  const char* env = std::getenv("JAMBA_SOURCE_DIR");
  const std::string root = env != nullptr ? env : std::filesystem::current_path().string();
  return root + "/tests/testdata/fixtures/" + name;
}

}  // namespace

WorkerHarness::WorkerHarness(const std::string& fixture) {
  checkpoint_ = ValueOrDie(model::Checkpoint::Open(FixtureDir(fixture)));
  backend_ = ValueOrDie(kernels::CreateBackend(kernels::BackendKind::kCpu));
  model::WeightLoader loader(checkpoint_.get(), backend_.get());
  all_ = ValueOrDie(model::LocalExperts::Load(loader, backend_.get()));
}

std::vector<int> WorkerHarness::moe_layers() const {
  std::vector<int> layers;
  for (int l = 0; l < config().num_hidden_layers; ++l) {
    if (config().ffn_kind(l) == model::FfnKind::kMoe) layers.push_back(l);
  }
  return layers;
}

std::string WorkerHarness::PlacementJson(const std::string& target0,
                                         const std::string& target1) const {
  const int E = config().num_experts;
  const int half = E / 2;
  const int second_moe = moe_layers().at(1);
  return absl::StrCat(R"({"shards": [{"name": "s0", "targets": [")", target0,
                      R"("], "experts": "0-)", half - 1, R"(", "layer_experts": {")", second_moe,
                      R"(": "0,)", E - 1, R"("}}, {"name": "s1", "targets": [")", target1,
                      R"("], "experts": ")", half, "-", E - 1, R"(", "layer_experts": {")",
                      second_moe, R"(": "1-)", E - 2, R"("}}]})");
}

rpc::ExpertPlacement WorkerHarness::Placement(const std::string& target0,
                                              const std::string& target1) const {
  return ValueOrDie(rpc::ExpertPlacement::Parse(PlacementJson(target0, target1), config()));
}

std::unique_ptr<InProcessWorker> WorkerHarness::StartWorker(const std::string& shard, int port) {
  auto w = std::make_unique<InProcessWorker>();
  w->shard = shard;
  w->backend = ValueOrDie(kernels::CreateBackend(kernels::BackendKind::kCpu));
  const model::LocalExperts::HostPredicate hosts =
      ValueOrDie(Placement("unused:1", "unused:2").HostedBy(shard));
  model::WeightLoader loader(checkpoint_.get(), w->backend.get());
  w->experts = ValueOrDie(model::LocalExperts::Load(loader, w->backend.get(), hosts));
  expert::ExpertServiceOptions options;
  options.shard_name = shard;
  options.weight_bytes = ValueOrDie(expert::ExpertWeightBytes(*checkpoint_, hosts));
  w->service = std::make_unique<expert::ExpertServiceImpl>(config(), w->experts.get(), options);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(absl::StrCat("127.0.0.1:", port), grpc::InsecureServerCredentials(),
                           &w->port);
  rpc::ConfigureInternalServer(&builder);
  w->service->RegisterWith(&builder);
  w->server = builder.BuildAndStart();
  JAMBA_CHECK(w->server != nullptr && w->port != 0) << "cannot listen on port " << port;
  w->service->Start();
  return w;
}

Tensor WorkerHarness::RandomRows(int64_t T, std::mt19937* rng) const {
  std::normal_distribution<float> dist(0.0f, 1.0f);
  Tensor x = Tensor::Zeros(DType::kF32, {T, config().hidden_size});
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = dist(*rng);
  return x;
}

void WorkerHarness::RandomRouting(int64_t T, std::mt19937* rng, Tensor* weights, Tensor* experts) {
  const int E = config().num_experts, k = config().num_experts_per_tok;
  std::normal_distribution<float> dist(0.0f, 2.0f);
  Tensor logits = Tensor::Zeros(DType::kF32, {T, E});
  for (int64_t i = 0; i < logits.numel(); ++i) logits.data<float>()[i] = dist(*rng);
  *weights = Tensor::Zeros(DType::kF32, {T, k});
  *experts = Tensor::Zeros(DType::kI32, {T, k});
  backend_->MoeGate(logits, k, weights, experts);
}

}  // namespace jamba::testing
