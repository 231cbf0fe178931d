#include "rpc/grpc_options.h"

#include <grpc/grpc.h>

#include <climits>
#include <string>

namespace jamba::rpc {

grpc::ChannelArguments InternalChannelArguments(const char* health_service) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  args.SetMaxSendMessageSize(kMaxMessageBytes);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, kKeepaliveTimeMs);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, kKeepaliveTimeoutMs);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  // A replica that comes back is found within a second (the default
  // backoff grows to two minutes). GRPC_ARG_MIN_RECONNECT_BACKOFF_MS stays
  // at its default: it is also the connect timeout, and a short one fails
  // connections on a busy machine.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, kMaxReconnectBackoffMs / 4);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, kMaxReconnectBackoffMs);
  // Our service config, never one from DNS TXT records.
  args.SetInt(GRPC_ARG_SERVICE_CONFIG_DISABLE_RESOLUTION, 1);
  args.SetServiceConfigJSON(std::string(R"({"loadBalancingConfig": [{"round_robin": {}}],)") +
                            R"( "healthCheckConfig": {"serviceName": ")" + health_service +
                            R"("}})");
  return args;
}

void ConfigureInternalServer(grpc::ServerBuilder* builder, int max_connection_age_ms) {
  builder->SetMaxReceiveMessageSize(kMaxMessageBytes);
  builder->SetMaxSendMessageSize(kMaxMessageBytes);
  // Accept the clients' keepalive pings (the default minimum is 5 minutes,
  // after which the server sends GOAWAY too_many_pings).
  builder->AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder->AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                              kKeepaliveTimeMs / 2);
  builder->AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS, max_connection_age_ms);
  builder->AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS, INT_MAX);
}

}  // namespace jamba::rpc
