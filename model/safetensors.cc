// SafetensorsFile: mmap, then validate the header before any tensor view is
// handed out. Layout: u64 little-endian header length N, N bytes of JSON,
// then the data section that every tensor's data_offsets index into.
#include "model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "model/loader_io.h"
#include "nlohmann/json.hpp"

namespace jamba::model {
namespace {

using Json = nlohmann::json;

constexpr size_t kMaxRank = 16;

// Owns one read-only mapping; tensors keep it alive through their Buffer.
class Mapping {
 public:
  Mapping(void* addr, size_t size) : addr_(addr), size_(size) {}
  ~Mapping() { ::munmap(addr_, size_); }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;

 private:
  void* addr_;
  size_t size_;
};

// Safetensors dtypes we know but cannot compute with.
bool IsKnownUnsupportedDType(absl::string_view name) {
  static constexpr const char* kKnown[] = {
      "BOOL", "U8",  "I8", "I16",     "U16",     "I32",     "U32",     "I64",    "U64",
      "F64",  "C64", "F4", "F8_E5M2", "F8_E4M3", "F8_E8M0", "F6_E2M3", "F6_E3M2"};
  for (const char* known : kKnown) {
    if (name == known) return true;
  }
  return false;
}

absl::StatusOr<DType> ParseDType(absl::string_view name, absl::string_view tensor,
                                 absl::string_view path) {
  if (name == "F32") return DType::kF32;
  if (name == "BF16") return DType::kBF16;
  if (name == "F16") return DType::kF16;
  if (IsKnownUnsupportedDType(name)) {
    return absl::UnimplementedError(
        absl::StrCat("unsupported dtype ", name, " for tensor ", tensor, " in file ", path));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown dtype ", name, " for tensor ", tensor, " in file ", path));
}

// A non-negative JSON integer that fits in int64.
bool AsNonNegative(const Json& value, uint64_t* out) {
  if (value.is_number_unsigned()) {
    *out = value.get<uint64_t>();
  } else if (value.is_number_integer()) {
    const int64_t v = value.get<int64_t>();
    if (v < 0) return false;
    *out = static_cast<uint64_t>(v);
  } else {
    return false;
  }
  return *out <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
}

uint64_t ReadLittleEndian64(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = v << 8 | p[i];
  return v;
}

// Validates one header entry; errors name the file and the tensor.
struct EntryParser {
  absl::string_view path;
  absl::string_view name;
  uint64_t data_size;

  absl::Status Error(absl::string_view message) const {
    return absl::InvalidArgumentError(
        absl::StrCat("safetensors file ", path, ": tensor ", name, ": ", message));
  }

  // "__metadata__" is a string-to-string map.
  absl::Status CheckMetadata(const Json& entry) const {
    if (!entry.is_object()) return Error("must be an object of strings");
    for (const Json& value : entry) {
      if (!value.is_string()) return Error("must be an object of strings");
    }
    return absl::OkStatus();
  }

  // The shape, and in *nbytes its size in bytes (overflow-checked).
  absl::StatusOr<Shape> ParseShape(const Json& entry, DType dtype, uint64_t* nbytes) const {
    auto shape_it = entry.find("shape");
    if (shape_it == entry.end() || !shape_it->is_array()) {
      return Error("'shape' is missing or not an array");
    }
    if (shape_it->size() > kMaxRank) {
      return Error(absl::StrCat("rank ", shape_it->size(), " exceeds ", kMaxRank));
    }
    Shape shape;
    uint64_t numel = 1;
    for (const Json& dim_value : *shape_it) {
      uint64_t dim = 0;
      if (!AsNonNegative(dim_value, &dim)) {
        return Error("'shape' entries must be non-negative integers");
      }
      if (__builtin_mul_overflow(numel, dim, &numel)) {
        return Error("shape size overflows");
      }
      shape.push_back(static_cast<int64_t>(dim));
    }
    if (__builtin_mul_overflow(numel, uint64_t{DTypeSize(dtype)}, nbytes) ||
        numel > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return Error("shape size overflows");
    }
    return shape;
  }

  absl::StatusOr<SafetensorsFile::TensorInfo> Parse(const Json& entry) const {
    if (!entry.is_object()) {
      return Error(absl::StrCat("entry must be an object, got ", entry.type_name()));
    }
    auto dtype_it = entry.find("dtype");
    if (dtype_it == entry.end() || !dtype_it->is_string()) {
      return Error("'dtype' is missing or not a string");
    }
    ASSIGN_OR_RETURN(DType dtype, ParseDType(*dtype_it->get_ptr<const std::string*>(), name, path));
    uint64_t nbytes = 0;
    ASSIGN_OR_RETURN(Shape shape, ParseShape(entry, dtype, &nbytes));

    auto offsets_it = entry.find("data_offsets");
    uint64_t begin = 0;
    uint64_t end = 0;
    if (offsets_it == entry.end() || !offsets_it->is_array() || offsets_it->size() != 2 ||
        !AsNonNegative((*offsets_it)[0], &begin) || !AsNonNegative((*offsets_it)[1], &end)) {
      return Error("'data_offsets' must be two non-negative integers");
    }
    if (begin > end || end > data_size) {
      return Error(absl::StrCat("data_offsets [", begin, ", ", end,
                                "] are out of range of the data section of ", data_size, " bytes"));
    }
    if (end - begin != nbytes) {
      return Error(absl::StrCat("data_offsets [", begin, ", ", end, "] span ", end - begin,
                                " bytes but ", DTypeName(dtype), ShapeString(shape), " needs ",
                                nbytes));
    }
    return SafetensorsFile::TensorInfo{dtype, std::move(shape), begin, end};
  }
};

// No two tensors may share a byte, and a zero-size tensor may not sit
// strictly inside another.
absl::Status CheckNoOverlap(
    const std::map<std::string, SafetensorsFile::TensorInfo, std::less<>>& tensors,
    absl::string_view path) {
  using Entry = std::pair<const std::string*, const SafetensorsFile::TensorInfo*>;
  std::vector<Entry> order;
  order.reserve(tensors.size());
  for (const auto& [name, info] : tensors) order.emplace_back(&name, &info);
  std::sort(order.begin(), order.end(), [](const Entry& a, const Entry& b) {
    return std::make_pair(a.second->begin, a.second->end) <
           std::make_pair(b.second->begin, b.second->end);
  });
  uint64_t max_end = 0;
  const std::string* max_end_name = nullptr;
  for (const auto& [name, info] : order) {
    if (max_end_name != nullptr && info->begin < max_end) {
      return absl::InvalidArgumentError(absl::StrCat("safetensors file ", path, ": tensor ", *name,
                                                     " overlaps tensor ", *max_end_name));
    }
    if (max_end_name == nullptr || info->end > max_end) {
      max_end = info->end;
      max_end_name = name;
    }
  }
  return absl::OkStatus();
}

// Maps the regular file `path` (at least 8 bytes) read-only, as a Buffer
// that unmaps when the last tensor viewing it is gone.
absl::StatusOr<std::shared_ptr<Buffer>> MapFile(const std::string& path) {
  // O_NONBLOCK: a FIFO must fail the regular-file check, not hang open().
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return ErrnoToStatus(errno, "cannot open safetensors file", path);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int error_number = errno;
    ::close(fd);
    return ErrnoToStatus(error_number, "cannot stat safetensors file", path);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::InvalidArgumentError(
        absl::StrCat("safetensors file ", path, " is not a regular file"));
  }
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  if (file_size < 8) {
    ::close(fd);
    return absl::InvalidArgumentError(absl::StrCat("safetensors file ", path, " is ", file_size,
                                                   " bytes, too short for the header length"));
  }
  void* addr = ::mmap(nullptr, file_size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int mmap_errno = errno;
  ::close(fd);
  if (addr == MAP_FAILED) {
    return ErrnoToStatus(mmap_errno, "cannot mmap safetensors file", path);
  }
  auto mapping = std::make_shared<const Mapping>(addr, file_size);
  return WrapExternalBuffer(addr, file_size, Device::kCpu, std::move(mapping));
}

}  // namespace

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  auto file = std::unique_ptr<SafetensorsFile>(new SafetensorsFile());
  file->path_ = path;
  ASSIGN_OR_RETURN(file->mapping_, MapFile(path));
  const uint64_t file_size = file->mapping_->size();
  const auto* bytes = static_cast<const unsigned char*>(file->mapping_->data());
  const uint64_t header_size = ReadLittleEndian64(bytes);
  if (header_size > kMaxHeaderBytes) {
    return absl::InvalidArgumentError(absl::StrCat("safetensors file ", path, ": header length ",
                                                   header_size, " exceeds the limit of ",
                                                   kMaxHeaderBytes, " bytes (100 MiB)"));
  }
  if (header_size > file_size - 8) {
    return absl::InvalidArgumentError(absl::StrCat("safetensors file ", path, ": header length ",
                                                   header_size, " exceeds the ", file_size - 8,
                                                   " bytes after the length field"));
  }
  file->data_start_ = 8 + header_size;
  const absl::string_view header(reinterpret_cast<const char*>(bytes + 8), header_size);
  RETURN_IF_ERROR(file->ParseHeader(header, file_size - file->data_start_));
  return file;
}

void SafetensorsFile::DropPages(const Tensor& t) const {
  const auto begin = reinterpret_cast<uintptr_t>(t.raw_data());
  const auto end = begin + t.nbytes();
  const auto map_begin = reinterpret_cast<uintptr_t>(mapping_->data());
  const auto map_end = map_begin + mapping_->size();
  if (t.device() != Device::kCpu || begin < map_begin || end > map_end) return;
  const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t first = (begin + page - 1) / page * page, last = end / page * page;
  // Advice only: on failure the pages simply stay.
  if (first < last) ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

absl::Status SafetensorsFile::ParseHeader(absl::string_view header, uint64_t data_size) {
  const Json root = ParseJson(header);
  if (root.is_discarded()) {
    return absl::InvalidArgumentError(
        absl::StrCat("safetensors file ", path_, ": header is not valid JSON"));
  }
  if (!root.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "safetensors file ", path_, ": header must be a JSON object, got ", root.type_name()));
  }
  for (auto it = root.begin(); it != root.end(); ++it) {
    const EntryParser parser{path_, it.key(), data_size};
    if (it.key() == "__metadata__") {
      RETURN_IF_ERROR(parser.CheckMetadata(it.value()));
      continue;
    }
    ASSIGN_OR_RETURN(TensorInfo info, parser.Parse(it.value()));
    tensors_.emplace(it.key(), std::move(info));
  }
  return CheckNoOverlap(tensors_, path_);
}

std::vector<std::string> SafetensorsFile::TensorNames() const {
  std::vector<std::string> names;
  names.reserve(tensors_.size());
  for (const auto& entry : tensors_) names.push_back(entry.first);
  return names;
}

const SafetensorsFile::TensorInfo* SafetensorsFile::Find(absl::string_view name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

absl::StatusOr<Tensor> SafetensorsFile::Get(absl::string_view name) const {
  const TensorInfo* info = Find(name);
  if (info == nullptr) {
    return absl::NotFoundError(absl::StrCat("tensor ", name, " not found in file ", path_));
  }
  const size_t offset = static_cast<size_t>(data_start_ + info->begin);
  const uintptr_t address = reinterpret_cast<uintptr_t>(mapping_->data()) + offset;
  if (address % DTypeSize(info->dtype) == 0) {
    return Tensor(info->dtype, info->shape, mapping_, offset);
  }
  // Misaligned on disk: a typed pointer into the mapping would be UB.
  const size_t nbytes = static_cast<size_t>(info->end - info->begin);
  std::shared_ptr<Buffer> copy = AllocateHostBuffer(nbytes);
  if (copy == nullptr) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "out of host memory copying ", nbytes, " bytes of tensor ", name, " in file ", path_));
  }
  std::memcpy(copy->data(), static_cast<const char*>(mapping_->data()) + offset, nbytes);
  return Tensor(info->dtype, info->shape, std::move(copy));
}

}  // namespace jamba::model
