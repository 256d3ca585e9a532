"""How the client reaches the scheduler: address, TLS, token, deadlines.

The rules are the CLI's (client/command_context.cc, common/credentials.cc,
client/deja_client.cc):

- address: the one given, else $DEJA_SCHEDULER, else 127.0.0.1:7070;
- plaintext without a token only with insecure=True or $DEJA_INSECURE=1
  (a scheduler started with --insecure); otherwise TLS, trusting the CA of
  tls_ca (else $DEJA_TLS_CA, else the system's roots);
- the token of token=, else token_file=, else $DEJA_TOKEN, else
  $DEJA_TOKEN_FILE (else none), sent on every call as
  "authorization: Bearer TOKEN";
- every unary call has a deadline (30 s by default); watches have none
  unless a wait's timeout; a blob stream gets the deadline plus its size at
  256 KiB/s.

Thread-safe: a Connection's channel and stubs may be used from any thread.
"""

import os
from dataclasses import dataclass
from typing import Optional

import grpc

from deja import errors
from deja.v1 import content_pb2_grpc, scheduler_pb2_grpc

DEFAULT_SCHEDULER = "127.0.0.1:7070"
DEFAULT_TIMEOUT = 30.0
# A blob stream slower than this counts as stalled (common/blob_client.h).
MIN_STREAM_BYTES_PER_SECOND = 256 * 1024
_TRANSFER_WINDOW_BYTES = 4 << 20


@dataclass(frozen=True)
class Security:
    """How the channel is secured: plaintext (`insecure`), or TLS trusting
    `ca_pem` (None: the system's roots) with `token` ("" for none)."""

    insecure: bool = False
    ca_pem: Optional[bytes] = None
    token: str = ""


def resolve_address(address=None):
    """`address`, else $DEJA_SCHEDULER if set and non-empty, else 127.0.0.1:7070."""
    return address or os.environ.get("DEJA_SCHEDULER") or DEFAULT_SCHEDULER


def _read(path, source, token=False):
    """The file at `path` (bytes; a token: str, stripped); errors name `source`."""
    path = os.path.expanduser(os.fspath(path))
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise errors.InvalidArgument(f"{source}: {path}: {e.strerror or e}") from None
    if token:
        data = data.strip()
        if not data:
            raise errors.InvalidArgument(f"{source}: {path}: empty, not a token")
        return data.decode("utf-8")
    return data


def resolve_security(token=None, token_file=None, tls_ca=None, insecure=None):
    """The Security of these arguments and the environment, as the CLI's
    flags and variables combine (InvalidArgument naming the argument or
    variable whose file cannot be read)."""
    env = os.environ
    if insecure or (insecure is None and env.get("DEJA_INSECURE") in ("1", "true")):
        return Security(insecure=True)
    ca_source, ca_path = ("tls_ca", tls_ca) if tls_ca else ("$DEJA_TLS_CA", env.get("DEJA_TLS_CA"))
    ca_pem = _read(ca_path, ca_source) if ca_path else None
    if token:
        return Security(ca_pem=ca_pem, token=token)
    file_source = "token_file"
    if not token_file:
        if env.get("DEJA_TOKEN"):
            return Security(ca_pem=ca_pem, token=env["DEJA_TOKEN"])
        file_source, token_file = "$DEJA_TOKEN_FILE", env.get("DEJA_TOKEN_FILE")
    found = _read(token_file, file_source, token=True) if token_file else ""
    return Security(ca_pem=ca_pem, token=found)


def stream_timeout(timeout, size):
    """The deadline of a blob stream of `size` bytes (common/blob_client.h)."""
    return timeout + size / MIN_STREAM_BYTES_PER_SECOND


class Connection:
    """A channel to one scheduler, its Scheduler and ContentStore stubs, and
    the calls through them with deadlines and errors made DejaErrors.

    Connects lazily: an unreachable scheduler shows up as Unavailable on
    the first call.
    """

    def __init__(self, address, security, timeout=DEFAULT_TIMEOUT):
        self.address = address
        self.security = security
        self.timeout = float(timeout)
        options = [
            # gRPC's reconnect backoff grows to 120 s by default; a client
            # re-watching a restarting scheduler wants it back within seconds.
            ("grpc.initial_reconnect_backoff_ms", 250),
            ("grpc.max_reconnect_backoff_ms", 2000),
            # The connect deadline is the client's own deadline.
            ("grpc.min_reconnect_backoff_ms",
             int(min(max(self.timeout * 1000, 250), 24 * 3600 * 1000))),
            # As large as the scheduler sends: a large array's reply passes
            # gRPC's default 4 MiB (common/job_spec.h, kMaxGrpcMessageBytes).
            ("grpc.max_receive_message_length", 64 << 20),
            # A bounded receive window keeps a large download's memory small.
            ("grpc.http2.bdp_probe", 0),
            ("grpc.http2.lookahead_bytes", _TRANSFER_WINDOW_BYTES),
        ]
        if security.insecure:
            self.channel = grpc.insecure_channel(address, options=options)
        else:
            credentials = grpc.ssl_channel_credentials(root_certificates=security.ca_pem)
            if security.token:
                credentials = grpc.composite_channel_credentials(
                    credentials, grpc.access_token_call_credentials(security.token))
            self.channel = grpc.secure_channel(address, credentials, options=options)
        self.scheduler = scheduler_pb2_grpc.SchedulerStub(self.channel)
        self.content = content_pb2_grpc.ContentStoreStub(self.channel)

    def error(self, rpc_error, action):
        """The DejaError of a failed call made while doing `action`."""
        return errors.from_rpc_error(rpc_error, action, self.address,
                                     has_token=bool(self.security.token),
                                     has_ca=self.security.ca_pem is not None)

    def unary(self, method, request, action, timeout=None):
        """Calls a unary `method` (a stub attribute) with the deadline;
        returns its response or raises the DejaError of its failure."""
        try:
            return method(request, timeout=self.timeout if timeout is None else timeout)
        except grpc.RpcError as e:
            raise self.error(e, action) from None

    def close(self):
        """Closes the channel; calls under way are cancelled."""
        self.channel.close()
