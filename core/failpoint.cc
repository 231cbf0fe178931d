#include "core/failpoint.h"

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"

namespace jamba {
namespace {

struct Failpoint {
  int64_t first = 1;  // the evaluation it first fires at
  std::atomic<int64_t> evaluations{0};
};

// Parsed once; fixed afterwards, so lookups need no lock.
using FailpointMap = std::map<std::string, std::unique_ptr<Failpoint>, std::less<>>;

const FailpointMap& Failpoints() {
  static const FailpointMap* const points = [] {
    auto* map = new FailpointMap();
    const char* spec = std::getenv("JAMBA_FAILPOINTS");
    if (spec == nullptr) return map;
    for (absl::string_view item : absl::StrSplit(spec, ',', absl::SkipEmpty())) {
      const std::vector<absl::string_view> parts = absl::StrSplit(item, absl::MaxSplits('@', 1));
      auto point = std::make_unique<Failpoint>();
      if (parts.size() == 2 && (!absl::SimpleAtoi(parts[1], &point->first) || point->first < 1)) {
        continue;  // malformed count: the failpoint stays off
      }
      (*map)[std::string(parts[0])] = std::move(point);
    }
    return map;
  }();
  return *points;
}

}  // namespace

bool FailpointFires(absl::string_view name) {
  const FailpointMap& points = Failpoints();
  if (points.empty()) return false;
  const auto it = points.find(name);
  if (it == points.end()) return false;
  return it->second->evaluations.fetch_add(1) + 1 >= it->second->first;
}

}  // namespace jamba
