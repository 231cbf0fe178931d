// Attention tests: causal GQA / MQA / MHA over a KV cache against a double
// reference, with past > 0, and decode (L = 1) equal to the matching row of
// a full prefill. Cache rows past the visible range hold NaN, so reading
// them fails the test.
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "tests/kernels/backend_test_util.h"

namespace jamba::kernels::testing {
namespace {

struct Shape4 {
  int n_heads, n_kv_heads, head_dim;
};

// out[i, h*hd + e] = sum_{j <= past+i} softmax_j(q_i·k_j / sqrt(hd)) v_j[e],
// with KV head h / (n_heads / n_kv_heads).
std::vector<double> RefAttention(const Tensor& q, const Tensor& k, const Tensor& v, int64_t past,
                                 Shape4 s) {
  const int64_t L = q.dim(0), hd = s.head_dim, group = s.n_heads / s.n_kv_heads;
  const std::vector<double> qv = ToDoubles(q), kv = ToDoubles(k), vv = ToDoubles(v);
  std::vector<double> out(qv.size(), 0.0);
  for (int64_t i = 0; i < L; ++i) {
    for (int64_t h = 0; h < s.n_heads; ++h) {
      const int64_t g = h / group, T = past + i + 1;
      std::vector<double> p(T);
      double max = -INFINITY, sum = 0.0;
      for (int64_t j = 0; j < T; ++j) {
        double dot = 0.0;
        for (int64_t e = 0; e < hd; ++e) {
          dot += qv[(i * s.n_heads + h) * hd + e] * kv[(j * s.n_kv_heads + g) * hd + e];
        }
        p[j] = dot / std::sqrt(static_cast<double>(hd));
        max = std::max(max, p[j]);
      }
      for (int64_t j = 0; j < T; ++j) sum += (p[j] = std::exp(p[j] - max));
      for (int64_t j = 0; j < T; ++j) {
        for (int64_t e = 0; e < hd; ++e) {
          out[(i * s.n_heads + h) * hd + e] += p[j] / sum * vv[(j * s.n_kv_heads + g) * hd + e];
        }
      }
    }
  }
  return out;
}

// A [T, n_kv, hd] cache: random in rows [0, filled), NaN after.
Tensor RandomCache(int64_t T, int64_t filled, Shape4 s, std::mt19937* rng) {
  Tensor c = RandomF32({T, s.n_kv_heads, s.head_dim}, rng, -2.0f, 2.0f);
  const int64_t row = static_cast<int64_t>(s.n_kv_heads) * s.head_dim;
  for (int64_t i = filled * row; i < c.numel(); ++i) {
    c.data<float>()[i] = std::numeric_limits<float>::quiet_NaN();
  }
  return c;
}

class AttentionTest : public BackendTest {
 protected:
  Tensor Run(const Tensor& q, const Tensor& k, const Tensor& v, int64_t past, Shape4 s) {
    AttentionParams p;
    p.q = ToDevice(q);
    p.k_cache = ToDevice(k);
    p.v_cache = ToDevice(v);
    p.past = past;
    p.n_heads = s.n_heads;
    p.n_kv_heads = s.n_kv_heads;
    p.head_dim = s.head_dim;
    p.out = NewDevice(DType::kF32, q.shape());
    backend().Attention(p);
    return ToHost(p.out);
  }

  // With bf16 caches the reference reads the same bf16 values, so only the
  // f32 arithmetic differs.
  void CheckPrefill(Shape4 s, int64_t L, int64_t past, uint32_t seed, bool bf16 = false) {
    SCOPED_TRACE(::testing::Message()
                 << "heads " << s.n_heads << " kv " << s.n_kv_heads << " hd " << s.head_dim << " L "
                 << L << " past " << past << (bf16 ? " bf16" : " f32"));
    std::mt19937 rng(seed);
    const int64_t T = past + L + 3;  // spare rows beyond the visible range
    const Tensor q = RandomF32({L, static_cast<int64_t>(s.n_heads) * s.head_dim}, &rng);
    Tensor k = RandomCache(T, past + L, s, &rng), v = RandomCache(T, past + L, s, &rng);
    if (bf16) {
      k = ToBf16(k);
      v = ToBf16(v);
    }
    ExpectAllClose(Run(q, k, v, past, s), RefAttention(q, k, v, past, s), kRtolF32, kAtolF32);
  }

  static Tensor ToBf16(const Tensor& f32) {
    Tensor out = Tensor::Zeros(DType::kBF16, f32.shape());
    for (int64_t i = 0; i < f32.numel(); ++i) {
      static_cast<uint16_t*>(out.raw_data())[i] = F32ToBf16(f32.data<float>()[i]);
    }
    return out;
  }
};

TEST_P(AttentionTest, GroupedQueryHeads) {
  CheckPrefill({4, 2, 8}, 6, 0, 51);
  CheckPrefill({8, 2, 5}, 5, 3, 52);
}

TEST_P(AttentionTest, MultiQuery) {
  CheckPrefill({4, 1, 7}, 5, 0, 53);
  CheckPrefill({3, 1, 16}, 2, 9, 54);
}

TEST_P(AttentionTest, MultiHead) {
  CheckPrefill({3, 3, 9}, 7, 0, 55);
  CheckPrefill({2, 2, 4}, 4, 6, 56);
}

TEST_P(AttentionTest, Bf16Cache) {
  CheckPrefill({4, 2, 8}, 6, 0, 58, /*bf16=*/true);
  CheckPrefill({8, 2, 64}, 3, 1200, 59, /*bf16=*/true);  // long enough for split keys
  CheckPrefill({3, 1, 16}, 1, 9, 60, /*bf16=*/true);
}

TEST_P(AttentionTest, WideHeadsOverManyKeys) {
  // Key counts around multiples of 8, past the vector path's blocks of keys.
  CheckPrefill({4, 2, 64}, 37, 11, 61);
  CheckPrefill({2, 1, 128}, 9, 0, 62, /*bf16=*/true);
}

TEST_P(AttentionTest, OutputMayAliasQuery) {
  const Shape4 s = {4, 2, 32};
  const int64_t L = 19;
  std::mt19937 rng(63);
  const Tensor q = RandomF32({L, s.n_heads * s.head_dim}, &rng);
  const Tensor k = RandomCache(L, L, s, &rng), v = RandomCache(L, L, s, &rng);
  AttentionParams p;
  p.q = ToDevice(q);
  p.k_cache = ToDevice(k);
  p.v_cache = ToDevice(v);
  p.n_heads = s.n_heads;
  p.n_kv_heads = s.n_kv_heads;
  p.head_dim = s.head_dim;
  p.out = p.q;
  backend().Attention(p);
  ExpectAllClose(ToHost(p.out), RefAttention(q, k, v, 0, s), kRtolF32, kAtolF32);
}

TEST_P(AttentionTest, DecodeEqualsPrefillRow) {
  const Shape4 s = {6, 2, 12};
  const int64_t L = 7, T = 10, qd = s.n_heads * s.head_dim;
  std::mt19937 rng(57);
  const Tensor q = RandomF32({L, qd}, &rng);
  const Tensor k = RandomCache(T, L, s, &rng), v = RandomCache(T, L, s, &rng);
  const std::vector<double> full = ToDoubles(Run(q, k, v, 0, s));
  ExpectAllClose(F32Tensor(std::vector<float>(full.begin(), full.end()), {L, qd}),
                 RefAttention(q, k, v, 0, s), kRtolF32, kAtolF32);
  for (int64_t i = 0; i < L; ++i) {
    SCOPED_TRACE(::testing::Message() << "position " << i);
    const Tensor row = Run(q.Slice(i, i + 1).Clone(), k, v, i, s);
    ExpectAllClose(row, std::vector<double>(full.begin() + i * qd, full.begin() + (i + 1) * qd),
                   kRtolF32, 1e-6);
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, AttentionTest, ::testing::ValuesIn(TestBackends()), BackendName);

}  // namespace
}  // namespace jamba::kernels::testing
