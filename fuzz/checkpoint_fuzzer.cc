// libFuzzer target: a checkpoint directory built from the input — its
// config.json text, optionally a model.safetensors.index.json, and the
// bytes of model.safetensors (layout: a flags byte, bit 0 = with index; a
// u16 little-endian length and the config; the same for the index when
// present; the rest is the safetensors file) — opened with Checkpoint::Open (config parser,
// index parser, legacy-name resolution), then every tensor read in f32. The
// config text alone also goes through ParseJambaConfig, and the derived
// layer schedule is walked.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

#include "fuzz/fuzz_util.h"
#include "model/checkpoint.h"
#include "model/config.h"
#include "model/safetensors.h"

namespace {

void WalkConfig(const jamba::model::JambaConfig& c) {
  int moe = 0;
  for (int layer = 0; layer < c.num_hidden_layers; ++layer) {
    moe += c.ffn_kind(layer) == jamba::model::FfnKind::kMoe;
    moe += c.mixer_kind(layer) == jamba::model::MixerKind::kAttention;
  }
  volatile int64_t sink = moe + c.d_inner() + c.head_dim() + c.is_eos(2);
  (void)sink;
}

// Splits the input; reads past the end give zeros and empty strings.
struct Reader {
  const uint8_t* data;
  size_t size;
  uint8_t Byte() {
    if (size == 0) return 0;
    --size;
    return *data++;
  }
  std::string Take(size_t n) {
    n = std::min(n, size);
    std::string out(reinterpret_cast<const char*>(data), n);
    data += n;
    size -= n;
    return out;
  }
  std::string Chunk() {
    const size_t lo = Byte();
    return Take(lo | size_t{Byte()} << 8);
  }
  std::string Rest() { return Take(size); }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Reader input{data, size};
  const bool with_index = input.Byte() & 1;
  const std::string config = input.Chunk();
  const std::string index = with_index ? input.Chunk() : "";
  const std::string weights = input.Rest();

  auto parsed = jamba::model::ParseJambaConfig(config, "fuzz");
  if (parsed.ok()) WalkConfig(*parsed);

  const std::string dir = jamba::fuzz::ScratchDir() + "/checkpoint";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  auto write = [&](const std::string& name, const std::string& bytes) {
    jamba::fuzz::WriteFileOrDie(dir + "/" + name, reinterpret_cast<const uint8_t*>(bytes.data()),
                                bytes.size());
  };
  write("config.json", config);
  write("model.safetensors", weights);
  if (with_index) {
    write("model.safetensors.index.json", index);
    write("model-00001-of-00001.safetensors", weights);
  }
  auto checkpoint = jamba::model::Checkpoint::Open(dir);
  if (!checkpoint.ok()) return 0;
  WalkConfig((*checkpoint)->config());
  auto file = jamba::model::SafetensorsFile::Open(dir + "/model.safetensors");
  for (const std::string& name : (*checkpoint)->TensorNames()) {
    if (!(*checkpoint)->Has(name)) __builtin_trap();
    jamba::Shape shape;
    if (file.ok()) {
      if (const auto* info = (*file)->Find(name)) shape = info->shape;
    }
    auto tensor = (*checkpoint)->GetF32(name, shape);
    if (!tensor.ok()) continue;
    float sum = 0;
    const float* values = tensor->data<float>();
    for (int64_t i = 0; i < tensor->numel(); ++i) sum += values[i];
    volatile float sink = sum;
    (void)sink;
  }
  return 0;
}
