// Model parity against Hugging Face transformers on every committed fixture,
// for the reference and the fast CPU backend: logits at every prompt position
// and at each greedy decode step within 1e-4 of the reference (relative to
// its largest magnitude), greedy tokens identical.
#include <cstdio>
#include <memory>
#include <string>
#include <tuple>

#include "gtest/gtest.h"
#include "kernels/backend.h"
#include "model/checkpoint.h"
#include "model/greedy.h"
#include "model/jamba_model.h"
#include "tests/testing/fixtures.h"

namespace jamba::model {
namespace {

constexpr double kTolerance = 1e-4;

// (fixture name, backend).
class ParityTest : public ::testing::TestWithParam<std::tuple<std::string, kernels::BackendKind>> {
 protected:
  void SetUp() override {
    ref_ = testing::LoadReference(fixture());
    auto backend = kernels::CreateBackend(std::get<1>(GetParam()));
    ASSERT_TRUE(backend.ok()) << backend.status();
    backend_ = std::move(backend).value();
    auto checkpoint = Checkpoint::Open(ref_.dir);
    ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
    checkpoint_ = std::move(checkpoint).value();
    auto model = JambaModel::Load(*checkpoint_, backend_.get());
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = std::move(model).value();
    ASSERT_EQ(model_->config().vocab_size, ref_.vocab_size);
  }

  const std::string& fixture() const { return std::get<0>(GetParam()); }

  testing::Reference ref_;
  std::unique_ptr<kernels::Backend> backend_;
  std::unique_ptr<Checkpoint> checkpoint_;
  std::unique_ptr<JambaModel> model_;
};

TEST_P(ParityTest, PromptAndDecodeLogitsMatchTransformers) {
  const int64_t V = ref_.vocab_size, L = static_cast<int64_t>(ref_.prompt_ids.size());
  auto state = model_->NewSequence();
  ASSERT_TRUE(state.ok()) << state.status();
  SequenceChunk prompt{&*state, ref_.prompt_ids};
  auto logits = model_->Forward({&prompt, 1}, LogitsMode::kAll);
  ASSERT_TRUE(logits.ok()) << logits.status();
  ASSERT_EQ(logits->dim(0), L);

  double worst = 0;
  for (int64_t t = 0; t < L; ++t) {
    const double err = testing::RelativeMaxError(logits->data<float>() + t * V,
                                                 ref_.prompt_logits.data() + t * V, V);
    worst = std::max(worst, err);
    EXPECT_LE(err, kTolerance) << "prompt position " << t;
  }
  EXPECT_EQ(ArgMax(logits->data<float>() + (L - 1) * V, V), ref_.greedy_ids[0]);

  for (int s = 0; s < ref_.num_decode_steps; ++s) {
    SequenceChunk step{&*state, absl::MakeConstSpan(&ref_.greedy_ids[s], 1)};
    auto out = model_->Forward({&step, 1}, LogitsMode::kLast);
    ASSERT_TRUE(out.ok()) << out.status();
    const float* ref = ref_.decode_logits.data() + s * V;
    const double err = testing::RelativeMaxError(out->data<float>(), ref, V);
    worst = std::max(worst, err);
    EXPECT_LE(err, kTolerance) << "decode step " << s;
    EXPECT_EQ(ArgMax(out->data<float>(), V), ref_.greedy_ids[s + 1]) << "decode step " << s;
  }
  std::printf(
      "[parity] %s: worst relative logit error %.3g over %lld prompt positions "
      "and %d "
      "decode steps\n",
      fixture().c_str(), worst, static_cast<long long>(L), ref_.num_decode_steps);
}

TEST_P(ParityTest, GreedyGenerationMatchesTransformers) {
  GreedyOptions options;
  options.max_new_tokens = static_cast<int>(ref_.greedy_ids.size());
  options.stop_at_eos = false;
  auto tokens = GenerateGreedy(*model_, ref_.prompt_ids, options);
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  EXPECT_EQ(*tokens, ref_.greedy_ids);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ParityTest,
                         ::testing::Combine(::testing::ValuesIn(testing::ListFixtures()),
                                            ::testing::Values(kernels::BackendKind::kCpuReference,
                                                              kernels::BackendKind::kCpu)),
                         [](const auto& info) {
                           const bool fast = std::get<1>(info.param) == kernels::BackendKind::kCpu;
                           return std::get<0>(info.param) + (fast ? "_CpuFast" : "_CpuRef");
                         });

TEST(FixturesTest, AllCommittedFixturesArePresent) {
  EXPECT_GE(testing::ListFixtures().size(), 6u) << "tests/testdata/fixtures is incomplete";
}

}  // namespace
}  // namespace jamba::model
