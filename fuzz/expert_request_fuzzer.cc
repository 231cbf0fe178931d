// libFuzzer target: serialized jamba.internal.v1.ExpertRequest messages, as
// a hostile router would send them on an expert worker's Compute stream:
// parsed, handed to ExpertServiceImpl::Handle (validation, the tensor
// decoder, the expert computation) of a worker hosting the even experts of
// the bundled tiny model, and every tensor also decoded on its own.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/time/clock.h"
#include "expert_worker/expert_service.h"
#include "fuzz/fuzz_util.h"
#include "kernels/backend.h"
#include "model/checkpoint.h"
#include "model/local_experts.h"
#include "model/weight_loader.h"
#include "rpc/tensor_codec.h"

namespace {

struct Worker {
  std::unique_ptr<jamba::model::Checkpoint> checkpoint;
  std::unique_ptr<jamba::kernels::Backend> backend;
  std::unique_ptr<jamba::model::LocalExperts> experts;
  std::unique_ptr<jamba::expert::ExpertServiceImpl> service;
};
Worker* worker = nullptr;

template <typename T>
auto OrDie(T value) {
  if (!value.ok()) {
    std::fprintf(stderr, "expert fuzzer set-up: %s\n", value.status().ToString().c_str());
    std::abort();
  }
  return *std::move(value);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  worker = new Worker();
  const std::string dir = jamba::fuzz::SourceDir() + "/tests/testdata/tiny_model";
  worker->checkpoint = OrDie(jamba::model::Checkpoint::Open(dir));
  worker->backend = OrDie(jamba::kernels::CreateBackend(jamba::kernels::BackendKind::kCpu));
  jamba::model::WeightLoader loader(worker->checkpoint.get(), worker->backend.get());
  worker->experts = OrDie(jamba::model::LocalExperts::Load(
      loader, worker->backend.get(), [](int, int expert) { return expert % 2 == 0; }));
  jamba::expert::ExpertServiceOptions options;
  options.shard_name = "fuzz";
  worker->service = std::make_unique<jamba::expert::ExpertServiceImpl>(
      worker->checkpoint->config(), worker->experts.get(), options);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  jamba::internal::v1::ExpertRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
  const int64_t hidden = worker->checkpoint->config().hidden_size;
  for (const auto& group : request.groups()) {
    for (int64_t cols : {int64_t{-1}, hidden}) {
      auto x = jamba::rpc::DecodeTensor(group.x(), cols);
      if (x.ok() && x->dim(1) != group.x().shape(1)) __builtin_trap();
    }
  }
  const jamba::internal::v1::ExpertResponse response =
      worker->service->Handle(request, absl::Now());
  if (response.tag() != request.tag()) __builtin_trap();
  if (response.error_code() == 0) {
    if (response.outputs_size() != request.groups_size()) __builtin_trap();
    for (int g = 0; g < response.outputs_size(); ++g) {
      auto y = jamba::rpc::DecodeTensor(response.outputs(g).y(), hidden);
      if (!y.ok() || y->dim(0) != request.groups(g).x().shape(0)) __builtin_trap();
    }
  } else if (response.outputs_size() != 0 || response.error_message().empty()) {
    __builtin_trap();
  }
  return 0;
}
