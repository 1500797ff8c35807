"""The berth.v1 API: the gRPC server, and the grpc-free client channel the CLI uses."""

MAX_MESSAGE_BYTES = 4 * 1024 * 1024  # one request, as the server takes it and clients send it
# One reply, as the server sends it and clients take it: a list of every container or image
# grows with the host (a few kB a container), where a request does not.
MAX_REPLY_BYTES = 256 * 1024 * 1024
