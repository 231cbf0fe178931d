// Ping-pong micro-batches in JambaModel::Forward: with an asynchronous
// expert runner a batch of several sequences runs as two micro-batches
// whose expert calls overlap (two in flight at every wait), and the logits
// are bit-identical to the batch run in one piece with in-process experts.
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/backend.h"
#include "model/checkpoint.h"
#include "model/jamba_model.h"
#include "model/local_experts.h"
#include "model/weight_loader.h"
#include "tests/testing/fixtures.h"

namespace jamba::model {
namespace {

// The real in-process experts, run late: Submit keeps copies of the inputs
// and Wait computes. Logs "S" per Submit and "W" per Wait.
class DeferredExperts final : public ExpertRunner {
 public:
  explicit DeferredExperts(std::unique_ptr<LocalExperts> local) : local_(std::move(local)) {}

  absl::Status Run(int layer, const Tensor& x, const Tensor& weights, const Tensor& experts,
                   Tensor* out) override {
    return local_->Run(layer, x, weights, experts, out);
  }
  std::unique_ptr<PendingExperts> Submit(int layer, const Tensor& x, const Tensor& weights,
                                         const Tensor& experts, Tensor* out) override {
    events += "S";
    rows.push_back(x.dim(0));
    return std::make_unique<Call>(this, layer, x.Clone(), weights.Clone(), experts.Clone(), out);
  }
  bool asynchronous() const override { return true; }

  std::string events;
  std::vector<int64_t> rows;  // per Submit

 private:
  class Call final : public PendingExperts {
   public:
    Call(DeferredExperts* owner, int layer, Tensor x, Tensor w, Tensor e, Tensor* out)
        : owner_(owner), layer_(layer), x_(x), w_(w), e_(e), out_(out) {}
    absl::Status Wait() override {
      owner_->events += "W";
      return owner_->local_->Run(layer_, x_, w_, e_, out_);
    }

   private:
    DeferredExperts* owner_;
    int layer_;
    Tensor x_, w_, e_;
    Tensor* out_;
  };

  std::unique_ptr<LocalExperts> local_;
};

// The "sharded" fixture twice: with in-process experts (the reference) and
// over DeferredExperts with `options`.
struct TwoModels {
  explicit TwoModels(const ModelOptions& options = {}) {
    const testing::Reference ref = testing::LoadReference("sharded");
    backend = std::move(kernels::CreateBackend(kernels::BackendKind::kCpu)).value();
    checkpoint = std::move(Checkpoint::Open(ref.dir)).value();
    whole = std::move(JambaModel::Load(*checkpoint, backend.get())).value();
    WeightLoader loader(checkpoint.get(), backend.get());
    deferred = std::make_unique<DeferredExperts>(
        std::move(LocalExperts::Load(loader, backend.get())).value());
    remote =
        std::move(JambaModel::Load(*checkpoint, backend.get(), deferred.get(), options)).value();
  }
  int MoeLayers() const {
    int n = 0;
    for (int i = 0; i < whole->config().num_hidden_layers; ++i) {
      n += whole->config().ffn_kind(i) == FfnKind::kMoe ? 1 : 0;
    }
    return n;
  }

  std::unique_ptr<kernels::Backend> backend;
  std::unique_ptr<Checkpoint> checkpoint;
  std::unique_ptr<JambaModel> whole;
  std::unique_ptr<DeferredExperts> deferred;
  std::unique_ptr<JambaModel> remote;
};

TEST(MicroBatchTest, PingPongOverlapsExpertCallsAndChangesNoBit) {
  TwoModels m;
  JambaModel* whole = m.whole.get();
  JambaModel* split = m.remote.get();
  DeferredExperts& deferred = *m.deferred;

  // Three sequences: a prompt each, then two decode steps together.
  const std::vector<std::vector<int32_t>> prompts = {
      {1, 17, 42, 99, 5}, {1, 150, 7}, {1, 8, 9, 10, 11, 12, 13, 14}};
  std::vector<SequenceState> a, b;
  for (size_t i = 0; i < prompts.size(); ++i) {
    a.push_back(std::move(whole->NewSequence()).value());
    b.push_back(std::move(split->NewSequence()).value());
  }
  const int moe_layers = m.MoeLayers();
  std::vector<std::vector<int32_t>> feed = prompts;
  for (int step = 0; step < 3; ++step) {
    std::vector<SequenceChunk> ca, cb;
    int64_t tokens = 0;
    for (size_t i = 0; i < feed.size(); ++i) {
      ca.push_back({&a[i], feed[i]});
      cb.push_back({&b[i], feed[i]});
      tokens += static_cast<int64_t>(feed[i].size());
    }
    deferred.events.clear();
    deferred.rows.clear();
    auto want = whole->Forward(ca, LogitsMode::kAll);
    auto got = split->Forward(cb, LogitsMode::kAll);
    ASSERT_TRUE(want.ok()) << want.status();
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_EQ(got->shape(), want->shape());
    EXPECT_EQ(std::memcmp(got->raw_data(), want->raw_data(), want->nbytes()), 0) << "step " << step;
    // Two micro-batches per MoE layer, covering every row; both are in
    // flight before the first is collected (one's experts overlap the
    // other's mixer), not submitted and collected in turn.
    std::string want_events;
    for (int l = 0; l < moe_layers; ++l) want_events += "SSWW";
    EXPECT_EQ(deferred.events, want_events) << "step " << step;
    ASSERT_EQ(deferred.rows.size(), 2u * moe_layers);
    EXPECT_EQ(deferred.rows[0] + deferred.rows[1], tokens);
    for (size_t i = 0; i < feed.size(); ++i) {
      feed[i] = {static_cast<int32_t>((20 + 31 * step + 7 * i) % 150)};
    }
  }
}

TEST(MicroBatchTest, OverlapOffRunsOneBatchPerLayerAndChangesNoBit) {
  ModelOptions options;
  options.overlap_expert_calls = false;
  TwoModels m(options);
  JambaModel* whole = m.whole.get();
  JambaModel* one = m.remote.get();
  DeferredExperts& deferred = *m.deferred;

  const std::vector<std::vector<int32_t>> prompts = {{1, 17, 42, 99, 5}, {1, 150, 7}};
  std::vector<SequenceState> a, b;
  std::vector<SequenceChunk> ca, cb;
  int64_t tokens = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    a.push_back(std::move(whole->NewSequence()).value());
    b.push_back(std::move(one->NewSequence()).value());
    tokens += static_cast<int64_t>(prompts[i].size());
  }
  for (size_t i = 0; i < prompts.size(); ++i) {
    ca.push_back({&a[i], prompts[i]});
    cb.push_back({&b[i], prompts[i]});
  }
  auto want = whole->Forward(ca, LogitsMode::kAll);
  auto got = one->Forward(cb, LogitsMode::kAll);
  ASSERT_TRUE(want.ok()) << want.status();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(std::memcmp(got->raw_data(), want->raw_data(), want->nbytes()), 0);
  const int moe_layers = m.MoeLayers();
  std::string want_events;
  for (int l = 0; l < moe_layers; ++l) want_events += "SW";
  EXPECT_EQ(deferred.events, want_events);
  ASSERT_EQ(deferred.rows.size(), static_cast<size_t>(moe_layers));
  EXPECT_EQ(deferred.rows[0], tokens);
}

}  // namespace
}  // namespace jamba::model
