// Checkpoint::Open: config.json, then either the shard index or a single
// model.safetensors; every file is mapped once and every tensor's stored
// name is resolved to its canonical Hugging Face name.
#include "model/checkpoint.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "model/loader_io.h"
#include "model/safetensors.h"
#include "nlohmann/json.hpp"

namespace jamba::model {
namespace {

using Json = nlohmann::json;

constexpr char kIndexFile[] = "model.safetensors.index.json";
constexpr char kSingleFile[] = "model.safetensors";
constexpr size_t kMaxIndexBytes = 64 << 20;

// Rejects anything but a plain file name inside the checkpoint directory.
absl::Status CheckShardName(absl::string_view file, absl::string_view tensor,
                            absl::string_view index_path) {
  bool plain = !file.empty() && file != "." && file != "..";
  for (char ch : file) {
    if (ch == '/' || ch == '\\' || absl::ascii_iscntrl(static_cast<unsigned char>(ch))) {
      plain = false;
    }
  }
  if (plain) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("index ", index_path, ": file name '", file,
                                                 "' for tensor ", tensor,
                                                 " is not a plain file name"));
}

// weight_map of the index: tensor name -> shard file name.
absl::StatusOr<std::map<std::string, std::string>> ParseIndex(absl::string_view text,
                                                              absl::string_view index_path) {
  const Json root = ParseJson(text);
  if (root.is_discarded() || !root.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("index ", index_path, " is not a valid JSON object"));
  }
  auto map_it = root.find("weight_map");
  if (map_it == root.end() || !map_it->is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("index ", index_path, " has no 'weight_map' object"));
  }
  std::map<std::string, std::string> weight_map;
  for (auto it = map_it->begin(); it != map_it->end(); ++it) {
    if (!it.value().is_string()) {
      return absl::InvalidArgumentError(absl::StrCat("index ", index_path, ": tensor ", it.key(),
                                                     " must map to a file name string"));
    }
    const std::string& file = *it.value().get_ptr<const std::string*>();
    RETURN_IF_ERROR(CheckShardName(file, it.key(), index_path));
    weight_map.emplace(it.key(), file);
  }
  return weight_map;
}

// The layer number in "...layers.<i>....", or -1.
int LayerOf(absl::string_view name) {
  constexpr absl::string_view kLayers = "layers.";
  for (size_t pos = name.find(kLayers); pos != absl::string_view::npos;
       pos = name.find(kLayers, pos + 1)) {
    if (pos != 0 && name[pos - 1] != '.') continue;
    size_t i = pos + kLayers.size();
    int layer = 0;
    int digits = 0;
    while (i < name.size() && absl::ascii_isdigit(name[i]) && digits < 7) {
      layer = layer * 10 + (name[i] - '0');
      ++i;
      ++digits;
    }
    if (digits > 0 && i < name.size() && name[i] == '.') return layer;
  }
  return -1;
}

void ReplaceOnce(std::string* name, absl::string_view from, absl::string_view to) {
  const size_t pos = name->find(from.data(), 0, from.size());
  if (pos != std::string::npos) {
    name->replace(pos, from.size(), to.data(), to.size());
  }
}

// The Hugging Face name of a tensor stored under a legacy remote-code name
// (first Jamba-v0.1 upload); other names are returned unchanged.
std::string CanonicalName(absl::string_view stored, const JambaConfig& config) {
  std::string name(stored);
  ReplaceOnce(&name, ".moe.router.", ".feed_forward.router.");
  constexpr absl::string_view kExperts = ".moe.experts.";
  constexpr absl::string_view kFirstExpert = ".moe.experts.0.";
  const size_t pos = name.find(kExperts.data(), 0, kExperts.size());
  if (pos != std::string::npos) {
    // Dense MLPs were stored as a one-expert MoE.
    const int layer = LayerOf(name);
    const bool dense = layer >= 0 && config.ffn_kind(layer) == FfnKind::kDense;
    if (dense && absl::StartsWith(absl::string_view(name).substr(pos), kFirstExpert)) {
      name.replace(pos, kFirstExpert.size(), ".feed_forward.");
    } else {
      name.replace(pos, kExperts.size(), ".feed_forward.experts.");
    }
  }
  ReplaceOnce(&name, ".pre_moe_layernorm.", ".pre_ff_layernorm.");
  ReplaceOnce(&name, ".mamba.B_layernorm.", ".mamba.b_layernorm.");
  ReplaceOnce(&name, ".mamba.C_layernorm.", ".mamba.c_layernorm.");
  return name;
}

absl::Status WithContext(const absl::Status& status, absl::string_view context) {
  return absl::Status(status.code(), absl::StrCat(context, ": ", status.message()));
}

using Files = std::vector<std::unique_ptr<SafetensorsFile>>;
// (name as stored, index into Files) of every tensor a checkpoint provides.
using StoredNames = std::vector<std::pair<std::string, size_t>>;

// Opens every shard named by the index once; each listed tensor must be in
// the shard the index names.
absl::Status OpenShards(const std::string& dir, const std::string& index_path,
                        absl::string_view index_text, Files* files, StoredNames* stored) {
  ASSIGN_OR_RETURN(auto weight_map, ParseIndex(index_text, index_path));
  std::map<std::string, size_t> file_ids;
  for (const auto& [tensor, file] : weight_map) {
    auto [it, inserted] = file_ids.emplace(file, files->size());
    if (inserted) {
      auto opened = SafetensorsFile::Open(JoinPath(dir, file));
      if (!opened.ok()) {
        return WithContext(opened.status(), absl::StrCat("file ", file, " for tensor ", tensor,
                                                         " listed in index ", index_path));
      }
      files->push_back(*std::move(opened));
    }
    const SafetensorsFile& shard = *(*files)[it->second];
    if (!shard.Has(tensor)) {
      return absl::NotFoundError(absl::StrCat("tensor ", tensor, " listed in index ", index_path,
                                              " is not in file ", shard.path()));
    }
    stored->emplace_back(tensor, it->second);
  }
  return absl::OkStatus();
}

absl::Status OpenSingleFile(const std::string& dir, Files* files, StoredNames* stored) {
  const std::string path = JoinPath(dir, kSingleFile);
  if (!IsRegularFile(path)) {
    return absl::NotFoundError(absl::StrCat("checkpoint directory ", dir, " has neither ",
                                            kSingleFile, " nor ", kIndexFile));
  }
  ASSIGN_OR_RETURN(auto file, SafetensorsFile::Open(path));
  for (std::string& name : file->TensorNames()) {
    stored->emplace_back(std::move(name), files->size());
  }
  files->push_back(std::move(file));
  return absl::OkStatus();
}

}  // namespace

Checkpoint::~Checkpoint() = default;

absl::StatusOr<std::unique_ptr<Checkpoint>> Checkpoint::Open(const std::string& dir) {
  auto checkpoint = std::unique_ptr<Checkpoint>(new Checkpoint());
  checkpoint->dir_ = dir;
  ASSIGN_OR_RETURN(checkpoint->config_, LoadJambaConfig(dir));

  StoredNames stored;
  const std::string index_path = JoinPath(dir, kIndexFile);
  absl::StatusOr<std::string> index_text = ReadFileToString(index_path, kMaxIndexBytes);
  if (index_text.ok()) {
    RETURN_IF_ERROR(OpenShards(dir, index_path, *index_text, &checkpoint->files_, &stored));
  } else if (absl::IsNotFound(index_text.status())) {
    RETURN_IF_ERROR(OpenSingleFile(dir, &checkpoint->files_, &stored));
  } else {
    return index_text.status();
  }

  for (auto& [name, file_id] : stored) {
    std::string canonical = CanonicalName(name, checkpoint->config_);
    auto [it, inserted] = checkpoint->index_.emplace(canonical, std::make_pair(file_id, name));
    if (!inserted) {
      const auto& [other_id, other_name] = it->second;
      return absl::InvalidArgumentError(
          absl::StrCat("checkpoint ", dir, ": tensor ", name, " in file ",
                       checkpoint->files_[file_id]->path(), " and tensor ", other_name, " in file ",
                       checkpoint->files_[other_id]->path(), " both resolve to ", canonical));
    }
  }
  return checkpoint;
}

bool Checkpoint::Has(absl::string_view name) const { return index_.find(name) != index_.end(); }

absl::StatusOr<Tensor> Checkpoint::Get(absl::string_view name, const Shape& shape) const {
  auto it = index_.find(name);
  if (it == index_.end()) {
    return absl::NotFoundError(absl::StrCat("tensor ", name, " not found in checkpoint ", dir_));
  }
  const SafetensorsFile& file = *files_[it->second.first];
  const SafetensorsFile::TensorInfo* info = file.Find(it->second.second);
  JAMBA_CHECK(info != nullptr) << it->second.second;  // checked by Open
  if (info->shape != shape) {
    return absl::InvalidArgumentError(absl::StrCat("tensor ", name, " in file ", file.path(),
                                                   ": expected shape ", ShapeString(shape),
                                                   ", got ", ShapeString(info->shape)));
  }
  return file.Get(it->second.second);
}

void Checkpoint::DropPages(const Tensor& t) const {
  for (const auto& file : files_) file->DropPages(t);
}

absl::StatusOr<Tensor> Checkpoint::GetF32(absl::string_view name, const Shape& shape) const {
  ASSIGN_OR_RETURN(Tensor tensor, Get(name, shape));
  if (tensor.dtype() == DType::kF32) return tensor;
  const size_t numel = static_cast<size_t>(tensor.numel());
  std::shared_ptr<Buffer> buffer = AllocateHostBuffer(numel * sizeof(float));
  if (buffer == nullptr) {
    return absl::ResourceExhaustedError(absl::StrCat("out of host memory converting tensor ", name,
                                                     " of checkpoint ", dir_, " to f32"));
  }
  Tensor f32(DType::kF32, shape, std::move(buffer));
  // Get returns data aligned to the element size.
  const auto* src = static_cast<const uint16_t*>(tensor.raw_data());
  float* dst = f32.data<float>();
  if (tensor.dtype() == DType::kBF16) {
    for (size_t i = 0; i < numel; ++i) dst[i] = Bf16ToF32(src[i]);
  } else {
    for (size_t i = 0; i < numel; ++i) dst[i] = F16ToF32(src[i]);
  }
  return f32;
}

std::vector<std::string> Checkpoint::TensorNames() const {
  std::vector<std::string> names;
  names.reserve(index_.size());
  for (const auto& entry : index_) names.push_back(entry.first);
  return names;
}

}  // namespace jamba::model
