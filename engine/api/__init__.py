"""The berth.v1 API: the gRPC server, and the grpc-free client channel the CLI uses."""

MAX_MESSAGE_BYTES = 4 * 1024 * 1024  # one message, each way: the server's and both clients'
