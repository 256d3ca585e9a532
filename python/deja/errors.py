"""The exceptions of the Deja client: one hierarchy under DejaError.

Every failure the client reports, from the scheduler or found locally (a
missing input file, a bad pipeline file, an output that does not match its
digest), is a DejaError subclass chosen by its gRPC status code, and its
message says what the client was doing and what went wrong:

    get job j999: job j999 not found                       (NotFound)
    submit: input "data": /tmp/x: No such file or directory   (NotFound)
    submit: scheduler at 127.0.0.1:7070 unreachable: ...   (Unavailable)
"""

import grpc


class DejaError(Exception):
    """Base of every error the client raises.

    Attributes:
        code: the grpc.StatusCode of the failure (UNKNOWN when none applies).
        details: the scheduler's status message, or the local problem.
        action: what the client was doing ("submit", "get job j12").
    """

    code = grpc.StatusCode.UNKNOWN

    def __init__(self, details, action="", code=None):
        self.details = details
        self.action = action
        if code is not None:
            self.code = code
        super().__init__(f"{action}: {details}" if action else details)


class InvalidArgument(DejaError):
    """A bad request: the message names the field (or file, line and field)."""
    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(DejaError):
    """No such job, array, pipeline, blob, or local input file."""
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(DejaError):
    """The thing to create exists already."""
    code = grpc.StatusCode.ALREADY_EXISTS


class PermissionDenied(DejaError):
    """The token may not do this (its role or project)."""
    code = grpc.StatusCode.PERMISSION_DENIED


class Unauthenticated(DejaError):
    """No token, or a token the scheduler does not know (or revoked)."""
    code = grpc.StatusCode.UNAUTHENTICATED


class FailedPrecondition(DejaError):
    """Not in a state that allows it (e.g. `get` of a job that failed)."""
    code = grpc.StatusCode.FAILED_PRECONDITION


class ResourceExhausted(DejaError):
    """The scheduler or a message ran out of room; try again later."""
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(DejaError):
    """The scheduler cannot be reached, or the connection broke."""
    code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceeded(DejaError):
    """A call, or a wait, ran out of time."""
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class Unimplemented(DejaError):
    """The scheduler does not serve this RPC (an older scheduler)."""
    code = grpc.StatusCode.UNIMPLEMENTED


class Cancelled(DejaError):
    """The call was cancelled."""
    code = grpc.StatusCode.CANCELLED


class DataLoss(DejaError):
    """Downloaded bytes did not match their digest or size."""
    code = grpc.StatusCode.DATA_LOSS


class Internal(DejaError):
    """Something broke inside the scheduler or the client."""
    code = grpc.StatusCode.INTERNAL


_BY_CODE = {cls.code: cls for cls in (
    InvalidArgument, NotFound, AlreadyExists, PermissionDenied, Unauthenticated,
    FailedPrecondition, ResourceExhausted, Unavailable, DeadlineExceeded, Unimplemented,
    Cancelled, DataLoss, Internal)}


def error(code, details, action=""):
    """The DejaError subclass of `code` with `details` and `action`."""
    return _BY_CODE.get(code, DejaError)(details, action, code)


def from_rpc_error(rpc_error, action, address, has_token, has_ca):
    """Turns a grpc.RpcError into a DejaError, as the CLI reports it.

    `address` is the scheduler's; `has_token` and `has_ca` say how the
    client was configured, for the hints the CLI gives (no token given; the
    scheduler's CA not trusted).
    """
    code = rpc_error.code() if callable(getattr(rpc_error, "code", None)) else None
    code = code or grpc.StatusCode.UNKNOWN
    details = (rpc_error.details() if callable(getattr(rpc_error, "details", None))
               else None) or f"{code.name} (no message)"
    if code == grpc.StatusCode.UNAVAILABLE:
        details = f"cannot reach scheduler at {address}: {details}"
        if not has_ca and "CERTIFICATE_VERIFY_FAILED" in details:
            details += (" (the scheduler's certificate is not signed by a CA this machine "
                        "trusts: give its CA with tls_ca= or $DEJA_TLS_CA; a scheduler's own "
                        "is DATA_DIR/tls/ca.crt)")
    elif code == grpc.StatusCode.UNIMPLEMENTED and not rpc_error.details():
        details = f"the scheduler at {address} does not serve this call (an older scheduler?)"
    elif code == grpc.StatusCode.UNAUTHENTICATED and not has_token:
        details += " (give a token with token=, token_file=, $DEJA_TOKEN or $DEJA_TOKEN_FILE)"
    return error(code, details, action)


def from_os_error(os_error, action, what=""):
    """Turns a local OSError into a DejaError of the matching code.

    `what` (e.g. 'input "data"') goes before the file name and the system's
    message.
    """
    if isinstance(os_error, FileNotFoundError):
        code = grpc.StatusCode.NOT_FOUND
    elif isinstance(os_error, PermissionError):
        code = grpc.StatusCode.PERMISSION_DENIED
    else:
        code = grpc.StatusCode.INTERNAL
    reason = os_error.strerror or str(os_error)
    subject = os_error.filename if os_error.filename is not None else ""
    details = f"{subject}: {reason}" if subject else reason
    return error(code, f"{what}: {details}" if what else details, action)
