// Tables of hostile requests for the end-to-end hostile-input test: bad
// public requests (every field out of range, bad text, oversize messages)
// and malformed expert requests on the internal Compute stream. Each row
// names the status the server must answer with and a substring of its
// message (the field or the problem it names).
#pragma once

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "jamba/internal/v1/expert.pb.h"
#include "jamba/v1/jamba.pb.h"

namespace jamba::testing {

// What the router was started with, for building requests around limits.
struct HostileLimits {
  int32_t vocab_size = 0;
  int64_t context_limit = 0;
  uint32_t max_new_tokens_limit = 0;
  size_t max_receive_bytes = 0;  // the router's gRPC receive limit
};

enum class PublicRpc { kGenerate, kGenerateStream, kCountTokens };

struct PublicCase {
  std::string name;
  PublicRpc rpc = PublicRpc::kGenerate;
  // Applied to a valid request: text "hello", greedy, 4 new tokens. For
  // kCountTokens only the input and add_bos are sent.
  std::function<void(jamba::v1::GenerateRequest*)> mutate;
  grpc::StatusCode code = grpc::StatusCode::INVALID_ARGUMENT;
  std::string message_part;
};

std::vector<PublicCase> PublicHostileCases(const HostileLimits& limits);

// What the expert worker under test hosts.
struct ExpertTarget {
  int64_t hidden_size = 0;
  int num_layers = 0;
  int dense_layer = 0;          // a layer without experts
  int moe_layer = 0;            // an MoE layer
  int hosted_expert = 0;        // hosted for moe_layer
  int other_hosted_expert = 0;  // another one
  int unhosted_expert = 0;      // an expert of the model this worker does not host
};

struct ExpertCase {
  std::string name;
  // Applied to a valid request: layer moe_layer, one group of 2 f32 rows
  // for hosted_expert.
  std::function<void(jamba::internal::v1::ExpertRequest*)> mutate;
  grpc::StatusCode code = grpc::StatusCode::INVALID_ARGUMENT;
  std::string message_part;
};

// The valid request the expert cases start from.
jamba::internal::v1::ExpertRequest ValidExpertRequest(const ExpertTarget& target);
std::vector<ExpertCase> ExpertHostileCases(const ExpertTarget& target);

}  // namespace jamba::testing
