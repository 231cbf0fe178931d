// gRPC settings shared by our internal hops (router <-> workers): message
// size limits (serving-conventions 1.6) and keepalive (1.5). Thread-safe.
#pragma once

#include <grpcpp/server_builder.h>
#include <grpcpp/support/channel_arguments.h>

namespace jamba::rpc {

// Largest message either side accepts; a step's rows for one shard fit.
inline constexpr int kMaxMessageBytes = 256 << 20;
// Clients ping idle connections this often; servers accept pings this often.
inline constexpr int kKeepaliveTimeMs = 30'000;
inline constexpr int kKeepaliveTimeoutMs = 10'000;

// Channel arguments for internal clients: receive limit and keepalive.
grpc::ChannelArguments InternalChannelArguments();
// Receive limit and keepalive acceptance for internal servers.
void ConfigureInternalServer(grpc::ServerBuilder* builder);

}  // namespace jamba::rpc
