// A plain HTTP/1.0 GET for tests of the /metrics endpoints.
#pragma once

#include <string>

namespace jamba::testing {

// GET `path` from 127.0.0.1:`port`; returns the whole response (status
// line, headers and body), or "" when the connection fails.
std::string HttpGet(int port, const std::string& path);

}  // namespace jamba::testing
