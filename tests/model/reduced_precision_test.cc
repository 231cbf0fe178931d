// The model with a bf16 KV cache and int8 experts (one scale per output
// row) on every backend, against the transformers fixtures: prompt and
// decode logits within a stated tolerance of the f32 reference, measured
// relative to the largest logit. The tolerances cover bf16 rounding of K/V
// (2^-9 relative) and int8 rounding of expert weights (1/254 of a row's
// largest weight); the worst errors seen are printed.
#include <algorithm>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <tuple>

#include "gtest/gtest.h"
#include "kernels/backend.h"
#include "model/checkpoint.h"
#include "model/jamba_model.h"
#include "tests/testing/fixtures.h"

namespace jamba::model {
namespace {

constexpr double kBf16KvTolerance = 2e-2;
constexpr double kInt8ExpertsTolerance = 1e-1;

struct Variant {
  const char* name;
  ModelOptions options;
  double tolerance;
};

const Variant kVariants[] = {
    {"Bf16Kv", {DType::kBF16, ExpertWeights::kAsStored}, kBf16KvTolerance},
    {"Int8Experts", {DType::kF32, ExpertWeights::kInt8}, kInt8ExpertsTolerance},
    {"Bf16KvInt8Experts", {DType::kBF16, ExpertWeights::kInt8}, kInt8ExpertsTolerance},
};

using Param = std::tuple<std::string, kernels::BackendKind, int>;

class ReducedPrecisionTest : public ::testing::TestWithParam<Param> {};

TEST_P(ReducedPrecisionTest, LogitsStayNearTransformers) {
  const auto& [fixture, kind, variant_index] = GetParam();
  const Variant& variant = kVariants[variant_index];
  auto backend = kernels::CreateBackend(kind);
  if (!backend.ok()) GTEST_SKIP() << "backend unavailable: " << backend.status();
  const testing::Reference ref = testing::LoadReference(fixture);
  auto checkpoint = Checkpoint::Open(ref.dir);
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  auto model = JambaModel::Load(**checkpoint, backend->get(), nullptr, variant.options);
  ASSERT_TRUE(model.ok()) << model.status();
  const int64_t V = ref.vocab_size, L = static_cast<int64_t>(ref.prompt_ids.size());
  auto state = (*model)->NewSequence();
  ASSERT_TRUE(state.ok()) << state.status();
  SequenceChunk prompt{&*state, ref.prompt_ids};
  auto logits = (*model)->Forward({&prompt, 1}, LogitsMode::kAll);
  ASSERT_TRUE(logits.ok()) << logits.status();
  double worst = 0;
  for (int64_t t = 0; t < L; ++t) {
    const double err = testing::RelativeMaxError(logits->data<float>() + t * V,
                                                 ref.prompt_logits.data() + t * V, V);
    worst = std::max(worst, err);
    EXPECT_LE(err, variant.tolerance) << "prompt position " << t;
  }
  for (int s = 0; s < ref.num_decode_steps; ++s) {
    SequenceChunk step{&*state, absl::MakeConstSpan(&ref.greedy_ids[s], 1)};
    auto out = (*model)->Forward({&step, 1}, LogitsMode::kLast);
    ASSERT_TRUE(out.ok()) << out.status();
    const double err =
        testing::RelativeMaxError(out->data<float>(), ref.decode_logits.data() + s * V, V);
    worst = std::max(worst, err);
    EXPECT_LE(err, variant.tolerance) << "decode step " << s;
  }
  std::printf("[reduced precision] %s %s %s: worst relative logit error %.3g (tolerance %.g)\n",
              fixture.c_str(), (*backend)->name().c_str(), variant.name, worst, variant.tolerance);
}

std::string BackendLabel(kernels::BackendKind kind) {
  switch (kind) {
    case kernels::BackendKind::kCpuReference:
      return "Cpu";
    case kernels::BackendKind::kCpu:
      return "CpuFast";
    default:
      return "Cuda";
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ReducedPrecisionTest,
                         ::testing::Combine(::testing::ValuesIn(testing::ListFixtures()),
                                            ::testing::Values(kernels::BackendKind::kCpuReference,
                                                              kernels::BackendKind::kCpu,
                                                              kernels::BackendKind::kCuda),
                                            ::testing::Values(0, 1, 2)),
                         [](const auto& info) {
                           return std::get<0>(info.param) + "_" +
                                  BackendLabel(std::get<1>(info.param)) + "_" +
                                  kVariants[std::get<2>(info.param)].name;
                         });

}  // namespace
}  // namespace jamba::model
