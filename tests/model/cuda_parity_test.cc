// Model parity of the CUDA backend against Hugging Face transformers on
// every committed fixture: prompt logits and greedy decode steps. In the
// f32 MatMul mode the tolerance is the CPU's 1e-4 (relative to the largest
// logit); in the bf16 mode (activations rounded to bf16 for cuBLAS) it is
// kBf16Tolerance = 3e-2. Skipped (visibly) when no CUDA device answers.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <tuple>

#include "gtest/gtest.h"
#include "kernels/cuda/cuda_backend.h"
#include "model/checkpoint.h"
#include "model/jamba_model.h"
#include "tests/testing/fixtures.h"

namespace jamba::model {
namespace {

constexpr double kF32Tolerance = 1e-4;
constexpr double kBf16Tolerance = 3e-2;

using Param = std::tuple<std::string, kernels::CudaMatMulMode>;

class CudaParityTest : public ::testing::TestWithParam<Param> {};

TEST_P(CudaParityTest, PromptAndDecodeLogitsMatchTransformers) {
  const auto& [fixture, mode] = GetParam();
  kernels::CudaBackendOptions options;
  options.matmul = mode;
  auto backend = kernels::CudaBackend::Create(options);
  if (!backend.ok()) GTEST_SKIP() << "no CUDA device: " << backend.status();
  const double tolerance = mode == kernels::CudaMatMulMode::kF32 ? kF32Tolerance : kBf16Tolerance;
  const testing::Reference ref = testing::LoadReference(fixture);
  auto checkpoint = Checkpoint::Open(ref.dir);
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  auto model = JambaModel::Load(**checkpoint, backend->get());
  ASSERT_TRUE(model.ok()) << model.status();
  const int64_t V = ref.vocab_size, L = static_cast<int64_t>(ref.prompt_ids.size());

  auto state = (*model)->NewSequence();
  ASSERT_TRUE(state.ok()) << state.status();
  SequenceChunk prompt{&*state, ref.prompt_ids};
  auto logits = (*model)->Forward({&prompt, 1}, LogitsMode::kAll);
  ASSERT_TRUE(logits.ok()) << logits.status();
  ASSERT_EQ(logits->dim(0), L);
  double worst = 0;
  for (int64_t t = 0; t < L; ++t) {
    const double err = testing::RelativeMaxError(logits->data<float>() + t * V,
                                                 ref.prompt_logits.data() + t * V, V);
    worst = std::max(worst, err);
    EXPECT_LE(err, tolerance) << "prompt position " << t;
  }
  // Decode from the reference's greedy tokens, so one near-tie flipped in
  // bf16 does not derail the later steps.
  for (int s = 0; s < ref.num_decode_steps; ++s) {
    SequenceChunk step{&*state, absl::MakeConstSpan(&ref.greedy_ids[s], 1)};
    auto out = (*model)->Forward({&step, 1}, LogitsMode::kLast);
    ASSERT_TRUE(out.ok()) << out.status();
    const double err =
        testing::RelativeMaxError(out->data<float>(), ref.decode_logits.data() + s * V, V);
    worst = std::max(worst, err);
    EXPECT_LE(err, tolerance) << "decode step " << s;
  }
  std::printf("[cuda parity] %s %s: worst relative logit error %.3g (tolerance %.g)\n",
              fixture.c_str(), mode == kernels::CudaMatMulMode::kF32 ? "f32" : "bf16", worst,
              tolerance);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CudaParityTest,
                         ::testing::Combine(::testing::ValuesIn(testing::ListFixtures()),
                                            ::testing::Values(kernels::CudaMatMulMode::kF32,
                                                              kernels::CudaMatMulMode::kBf16)),
                         [](const auto& info) {
                           return std::get<0>(info.param) +
                                  (std::get<1>(info.param) == kernels::CudaMatMulMode::kF32
                                       ? "_F32"
                                       : "_Bf16");
                         });

}  // namespace
}  // namespace jamba::model
