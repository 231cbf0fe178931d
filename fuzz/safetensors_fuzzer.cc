// libFuzzer target: a .safetensors file (header JSON, offsets, dtypes,
// shapes) opened with SafetensorsFile, and every tensor it accepts read in
// full, so that a view reaching outside the mapping shows up under ASan.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "core/tensor.h"
#include "fuzz/fuzz_util.h"
#include "model/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = jamba::fuzz::ScratchDir() + "/input.safetensors";
  jamba::fuzz::WriteFileOrDie(path, data, size);
  auto file = jamba::model::SafetensorsFile::Open(path);
  if (!file.ok()) return 0;
  for (const std::string& name : (*file)->TensorNames()) {
    const auto* info = (*file)->Find(name);
    if (info == nullptr) __builtin_trap();
    auto tensor = (*file)->Get(name);
    if (!tensor.ok()) continue;
    if (tensor->nbytes() != info->end - info->begin) __builtin_trap();
    const auto* bytes = static_cast<const unsigned char*>(tensor->raw_data());
    unsigned sum = 0;
    for (size_t i = 0; i < tensor->nbytes(); ++i) sum += bytes[i];
    asm volatile("" : : "r"(sum));
  }
  return 0;
}
