// ExpertServiceImpl over real gRPC on 127.0.0.1: shard info, error
// responses that keep the stream open, and several tagged requests in
// flight on one stream. Runs on two fixtures.
#include "expert_worker/expert_service.h"

#include <cstring>
#include <map>
#include <random>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rpc/tensor_codec.h"
#include "tests/expert_worker/worker_harness.h"

namespace jamba::expert {
namespace {

namespace pb = ::jamba::internal::v1;
using ::jamba::testing::InProcessWorker;
using ::jamba::testing::WorkerHarness;
using ::testing::HasSubstr;

class ExpertServiceTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    harness_ = std::make_unique<WorkerHarness>(GetParam());
    w0_ = harness_->StartWorker("s0");
    w1_ = harness_->StartWorker("s1");
    placement_ =
        std::make_unique<rpc::ExpertPlacement>(harness_->Placement(w0_->address(), w1_->address()));
  }

  std::unique_ptr<pb::ExpertService::Stub> Stub(const InProcessWorker& w) {
    return pb::ExpertService::NewStub(
        grpc::CreateChannel(w.address(), grpc::InsecureChannelCredentials()));
  }

  // A request for `layer` with `n` random rows for each expert.
  pb::ExpertRequest Request(uint64_t tag, int layer, const std::vector<int>& experts, int64_t n,
                            std::mt19937* rng, DType wire = DType::kF32) {
    pb::ExpertRequest request;
    request.set_tag(tag);
    request.set_layer(layer);
    for (int e : experts) {
      pb::ExpertRows* rows = request.add_groups();
      rows->set_expert(e);
      rpc::EncodeTensor(harness_->RandomRows(n, rng), wire, rows->mutable_x());
    }
    return request;
  }

  // EXPECTs that `response` holds exactly the in-process outputs.
  void ExpectOutputs(const pb::ExpertRequest& request, const pb::ExpertResponse& response) {
    ASSERT_EQ(response.error_code(), 0) << response.error_message();
    EXPECT_EQ(response.tag(), request.tag());
    ASSERT_EQ(response.outputs_size(), request.groups_size());
    const int64_t H = harness_->config().hidden_size;
    for (int g = 0; g < request.groups_size(); ++g) {
      EXPECT_EQ(response.outputs(g).expert(), request.groups(g).expert());
      EXPECT_EQ(response.outputs(g).y().dtype(), request.groups(g).x().dtype());
      Tensor x = *rpc::DecodeTensor(request.groups(g).x(), H);
      Tensor y = *rpc::DecodeTensor(response.outputs(g).y(), H);
      Tensor want = Tensor::Zeros(DType::kF32, x.shape());
      ASSERT_TRUE(harness_->all_experts()
                      .RunExpert(request.layer(), request.groups(g).expert(), x, &want)
                      .ok());
      WireRound(&want, request.groups(g).x().dtype());
      ASSERT_EQ(y.shape(), want.shape());
      EXPECT_EQ(std::memcmp(y.raw_data(), want.raw_data(), y.nbytes()), 0)
          << "expert " << request.groups(g).expert() << " of layer " << request.layer();
    }
  }

  // Applies the wire rounding the service applies to its outputs.
  static void WireRound(Tensor* t, int proto_dtype) {
    rpc::TensorProto p;
    rpc::EncodeTensor(*t, *rpc::FromProtoDType(proto_dtype), &p);
    *t = *rpc::DecodeTensor(p, t->dim(1));
  }

  std::unique_ptr<WorkerHarness> harness_;
  std::unique_ptr<InProcessWorker> w0_, w1_;
  std::unique_ptr<rpc::ExpertPlacement> placement_;
};

TEST_P(ExpertServiceTest, EachWorkerHostsOnlyItsShare) {
  int64_t total_bytes = 0;
  for (InProcessWorker* w : {w0_.get(), w1_.get()}) {
    grpc::ClientContext context;
    pb::ShardInfoResponse info;
    ASSERT_TRUE(Stub(*w)->GetShardInfo(&context, pb::ShardInfoRequest(), &info).ok());
    EXPECT_EQ(info.shard(), w->shard);
    EXPECT_EQ(info.hidden_size(), harness_->config().hidden_size);
    std::vector<std::string> want;
    for (const auto& [layer, e] : placement_->ExpertsOf(placement_->FindShard(w->shard))) {
      want.push_back(rpc::PairName(layer, e));
    }
    EXPECT_EQ(std::vector<std::string>(info.experts().begin(), info.experts().end()), want);
    EXPECT_EQ(w->experts->num_hosted(), want.size());
    EXPECT_GT(info.weight_bytes(), 0);
    total_bytes += info.weight_bytes();
  }
  EXPECT_EQ(total_bytes, *ExpertWeightBytes(harness_->checkpoint(), {}));
}

TEST_P(ExpertServiceTest, ErrorResponsesKeepTheStreamOpen) {
  std::mt19937 rng(11);
  const int layer = harness_->moe_layers()[0];
  const int E = harness_->config().num_experts;
  const int64_t H = harness_->config().hidden_size;
  auto stub = Stub(*w0_);
  grpc::ClientContext context;
  auto stream = stub->Compute(&context);

  struct Case {
    pb::ExpertRequest request;
    grpc::StatusCode code;
    std::string needle;
  };
  std::vector<Case> cases;
  cases.push_back({Request(1, 0, {0}, 2, &rng), grpc::NOT_FOUND, "layer 0 is not an MoE layer"});
  cases.push_back({Request(2, 999, {0}, 2, &rng), grpc::NOT_FOUND, "layer 999"});
  cases.push_back({Request(3, layer, {E - 1}, 2, &rng), grpc::NOT_FOUND,
                   rpc::PairName(layer, E - 1) + " (layer:expert) is not hosted by shard \"s0\""});
  cases.push_back(
      {Request(4, layer, {77}, 2, &rng), grpc::NOT_FOUND, "expert " + rpc::PairName(layer, 77)});
  cases.push_back({Request(5, layer, {0, 0}, 2, &rng), grpc::INVALID_ARGUMENT, "appears twice"});
  Case cols{Request(6, layer, {0}, 2, &rng), grpc::INVALID_ARGUMENT, "columns, want"};
  rpc::EncodeTensor(Tensor::Zeros(DType::kF32, {2, H + 1}), DType::kF32,
                    cols.request.mutable_groups(0)->mutable_x());
  cases.push_back(cols);
  Case bytes{Request(7, layer, {0}, 3, &rng), grpc::INVALID_ARGUMENT, "bytes of data"};
  bytes.request.mutable_groups(0)->mutable_x()->mutable_data()->resize(5);
  cases.push_back(bytes);
  Case unspecified{Request(8, layer, {0}, 1, &rng), grpc::INVALID_ARGUMENT, "unspecified"};
  unspecified.request.mutable_groups(0)->mutable_x()->set_dtype(pb::DTYPE_UNSPECIFIED);
  cases.push_back(unspecified);
  Case unknown{Request(9, layer, {0}, 1, &rng), grpc::INVALID_ARGUMENT, "dtype 9 is unknown"};
  unknown.request.mutable_groups(0)->mutable_x()->set_dtype(static_cast<pb::DType>(9));
  cases.push_back(unknown);
  Case rank{Request(10, layer, {0}, 1, &rng), grpc::INVALID_ARGUMENT, "rank 1"};
  rank.request.mutable_groups(0)->mutable_x()->clear_shape();
  rank.request.mutable_groups(0)->mutable_x()->add_shape(H);
  cases.push_back(rank);

  for (const Case& c : cases) {
    ASSERT_TRUE(stream->Write(c.request));
    pb::ExpertResponse response;
    ASSERT_TRUE(stream->Read(&response)) << "stream closed after tag " << c.request.tag();
    EXPECT_EQ(response.tag(), c.request.tag());
    EXPECT_EQ(response.error_code(), c.code) << response.error_message();
    EXPECT_THAT(response.error_message(), HasSubstr(c.needle));
    EXPECT_EQ(response.outputs_size(), 0);
  }
  // The stream still computes.
  const pb::ExpertRequest good = Request(42, layer, {0, 1}, 5, &rng);
  ASSERT_TRUE(stream->Write(good));
  pb::ExpertResponse response;
  ASSERT_TRUE(stream->Read(&response));
  ExpectOutputs(good, response);
  EXPECT_TRUE(stream->WritesDone());
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_P(ExpertServiceTest, ManyRequestsInFlightAreMatchedByTag) {
  std::mt19937 rng(12);
  const std::vector<int> layers = harness_->moe_layers();
  auto stub = Stub(*w1_);
  grpc::ClientContext context;
  auto stream = stub->Compute(&context);
  std::map<uint64_t, pb::ExpertRequest> sent;
  for (int i = 0; i < 16; ++i) {
    const int layer = layers[i % layers.size()];
    std::vector<int> experts;
    for (int e = 0; e < harness_->config().num_experts; ++e) {
      if (placement_->ShardOf(layer, e) == 1 && rng() % 2 == 0) experts.push_back(e);
    }
    const uint64_t tag = 1000 + 7 * i;
    sent[tag] =
        Request(tag, layer, experts, 1 + rng() % 9, &rng, i % 4 == 3 ? DType::kBF16 : DType::kF32);
    ASSERT_TRUE(stream->Write(sent[tag]));
  }
  for (int i = 0; i < 16; ++i) {
    pb::ExpertResponse response;
    ASSERT_TRUE(stream->Read(&response));
    auto it = sent.find(response.tag());
    ASSERT_NE(it, sent.end()) << "unknown tag " << response.tag();
    ExpectOutputs(it->second, response);
    sent.erase(it);
  }
  EXPECT_TRUE(sent.empty());
  EXPECT_TRUE(stream->WritesDone());
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_P(ExpertServiceTest, EmptyGroupsAndRequestsAreAnswered) {
  std::mt19937 rng(13);
  const int layer = harness_->moe_layers()[0];
  auto stub = Stub(*w0_);
  grpc::ClientContext context;
  auto stream = stub->Compute(&context);
  for (const pb::ExpertRequest& request :
       {Request(1, layer, {}, 0, &rng), Request(2, layer, {0, 1}, 0, &rng)}) {
    ASSERT_TRUE(stream->Write(request));
    pb::ExpertResponse response;
    ASSERT_TRUE(stream->Read(&response));
    ExpectOutputs(request, response);
  }
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_P(ExpertServiceTest, DrainEndsOpenStreamsAndRefusesNewOnes) {
  std::mt19937 rng(14);
  const int layer = harness_->moe_layers()[0];
  auto stub = Stub(*w0_);
  grpc::ClientContext context;
  auto stream = stub->Compute(&context);
  const pb::ExpertRequest request = Request(5, layer, {1}, 3, &rng);
  ASSERT_TRUE(stream->Write(request));
  pb::ExpertResponse response;
  ASSERT_TRUE(stream->Read(&response));
  ExpectOutputs(request, response);

  w0_->service->BeginDrain();
  EXPECT_FALSE(stream->Read(&response));
  EXPECT_TRUE(stream->Finish().ok());
  grpc::ClientContext context2;
  auto refused = stub->Compute(&context2);
  EXPECT_FALSE(refused->Read(&response));
  EXPECT_EQ(refused->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
  const absl::Time start = absl::Now();
  w0_->server->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ExpertServiceTest, ::testing::Values("sharded", "gqa_h72"));

}  // namespace
}  // namespace jamba::expert
