// Helpers shared by the checkpoint loader: bounded reads of text files
// (config.json, the shard index), errno-to-Status mapping and non-throwing
// JSON parsing. Stateless and thread-safe.
#pragma once

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace jamba::model {

// A Status for a failed system call on `path`: NotFound for ENOENT,
// PermissionDenied for EACCES/EPERM, Unavailable otherwise.
absl::Status ErrnoToStatus(int error_number, absl::string_view what, absl::string_view path);

// True when `path` names an existing regular file.
bool IsRegularFile(const std::string& path);

// The whole content of the regular file `path`; InvalidArgument when it is
// larger than `max_bytes` (checked before anything is allocated).
absl::StatusOr<std::string> ReadFileToString(const std::string& path, size_t max_bytes);

// Parses `text` without exceptions; a discarded value (is_discarded()) on any
// syntax error, trailing garbage, or NUL byte (which nlohmann would otherwise
// take as the end of input, silently ignoring what follows).
nlohmann::json ParseJson(absl::string_view text);

// `dir` + "/" + `name`, without doubling a trailing slash.
std::string JoinPath(absl::string_view dir, absl::string_view name);

}  // namespace jamba::model
