// A small STREAM-like memory bandwidth probe for bench/compare/run.sh:
// read (sum of a 1 GiB array, what a GEMV does with weights) and triad
// (a = b + s*c, counting 2 reads + 1 write), on --threads threads, best of 5.
// Prints {"threads", "read_gbs", "triad_gbs"}.
//
//   g++ -O3 -march=native -ffast-math -pthread stream.cc -o stream && ./stream 2
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <thread>
#include <vector>

namespace {

double BestGbs(int threads, double bytes, const std::function<void(int)>& body) {
  double best = 0;
  for (int rep = 0; rep < 6; ++rep) {
    const auto start = std::chrono::steady_clock::now();
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) pool.emplace_back(body, t);
    for (std::thread& th : pool) th.join();
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (rep > 0) best = std::max(best, bytes / s * 1e-9);  // rep 0 warms up
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 1;
  const size_t n = size_t{1} << 28;  // 256 Mi floats = 1 GiB per array
  std::vector<float> a(n, 1.0f), b(n, 2.0f), c(n, 3.0f);
  std::vector<double> sums(threads);
  const size_t chunk = n / threads;
  const double read = BestGbs(threads, 4.0 * n, [&](int t) {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (size_t i = t * chunk; i < (t + 1) * chunk; i += 4) {
      s0 += b[i];
      s1 += b[i + 1];
      s2 += b[i + 2];
      s3 += b[i + 3];
    }
    sums[t] = s0 + s1 + s2 + s3;
  });
  const double triad = BestGbs(threads, 12.0 * n, [&](int t) {
    for (size_t i = t * chunk; i < (t + 1) * chunk; ++i) a[i] = b[i] + 3.0f * c[i];
  });
  std::printf("{\"threads\": %d, \"read_gbs\": %.1f, \"triad_gbs\": %.1f, \"check\": %.0f}\n",
              threads, read, triad, sums[0] + a[1]);
  return 0;
}
