// A small STREAM-like memory bandwidth probe for bench/compare/run.sh:
// read (sum of a 1 GiB array, what a GEMV does with weights) and triad
// (a = b + s*c, counting 2 reads + 1 write), on --threads threads, best of 5.
// The read is taken two ways, each thread's part as one sequential stream
// and as 8 interleaved streams (as the fast GEMV reads weights), and
// read_gbs is the faster: on the dev VM one stream per core leaves about a
// tenth of the bandwidth unused. Prints {"threads", "read_gbs",
// "read_1stream_gbs", "read_8streams_gbs", "triad_gbs"}.
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
  // 8 streams per thread: sub-parts of chunk / 8 floats, a cache line of each in turn.
  const double read8 = BestGbs(threads, 4.0 * n, [&](int t) {
    const size_t part = chunk / 8;
    const float* base = b.data() + t * chunk;
    float acc[16] = {};
    for (size_t i = 0; i < part; i += 16) {
      for (int s = 0; s < 8; ++s) {
        for (int l = 0; l < 16; ++l) acc[l] += base[s * part + i + l];
      }
    }
    float sum = 0;
    for (float v : acc) sum += v;
    sums[t] = sum;
  });
  const double triad = BestGbs(threads, 12.0 * n, [&](int t) {
    for (size_t i = t * chunk; i < (t + 1) * chunk; ++i) a[i] = b[i] + 3.0f * c[i];
  });
  std::printf(
      "{\"threads\": %d, \"read_gbs\": %.1f, \"read_1stream_gbs\": %.1f, "
      "\"read_8streams_gbs\": %.1f, \"triad_gbs\": %.1f, \"check\": %.0f}\n",
      threads, std::max(read, read8), read, read8, triad, sums[0] + a[1]);
  return 0;
}
