"""Moving files between the local disk and the content store, as the CLI does.

- prepare_inputs: local files and directories become deja.v1.InputRefs
  (kind, digest, size) and the distinct blobs behind them
  (client/inputs.cc): a file named directly is followed if it is a symlink
  (the user chose it); inside a directory symlinks are recorded, never
  followed.
- upload_missing: asks the store which blobs it lacks (FindMissingBlobs,
  10,000 a request) and uploads only those, files streamed from disk in
  1 MiB chunks; the store checks every upload against its digest.
- download: a blob into a file, through a temp file in the same directory
  renamed into place once its size and digest check out (DataLoss if not).

The CLI's persistent hash cache (client/hash_cache.h) is not used: every
file is hashed on every call.
"""

import os
import stat
import tempfile

import grpc
import xxhash

from deja import errors, hashing
from deja.connection import stream_timeout
from deja.v1 import content_pb2, job_pb2

_CHUNK = 1 << 20
_FIND_BATCH = 10000


def input_entries(inputs):
    """{name: (local path, workspace path)} of an `inputs` mapping whose
    values are local paths or (local path, workspace path) pairs ("" for
    the default workspace path inputs/NAME)."""
    entries = {}
    for name, value in (inputs or {}).items():
        if isinstance(value, (tuple, list)):
            if len(value) != 2:
                raise errors.InvalidArgument(
                    f"input {name!r}: expected a path or (path, workspace_path), got {value!r}")
            entries[name] = (os.fspath(value[0]), str(value[1] or ""))
        else:
            entries[name] = (os.fspath(value), "")
    return entries


def prepare_inputs(inputs, action="submit", label="input {!r}"):
    """Hashes local inputs for a job.

    `inputs` maps each input name to a local path, or to a pair (local
    path, workspace path) (default workspace path: inputs/NAME); relative
    paths are taken from the current directory. Returns (refs, blobs): one
    deja.v1.InputRef per input, in order, and every distinct hashing.Blob
    behind them. Raises NotFound for a path that does not exist,
    InvalidArgument for one that is neither a file nor a directory; the
    message names the input as `label` formats its name.
    """
    refs, blobs = [], {}
    for name, (local, workspace_path) in input_entries(inputs).items():
        what = label.format(name)
        ref = job_pb2.InputRef(name=name, path=workspace_path)
        try:
            resolved = os.path.realpath(local, strict=True)
            st = os.stat(resolved)
            if stat.S_ISREG(st.st_mode):
                ref.kind, ref.digest, ref.size = "file", hashing.digest_file(resolved), st.st_size
                found = [hashing.Blob(ref.digest, st.st_size, path=resolved)]
            elif stat.S_ISDIR(st.st_mode):
                tree = hashing.digest_tree(resolved)
                ref.kind, ref.digest, ref.size = "dir", tree.digest, tree.size
                ref.total_bytes = tree.total_bytes
                found = tree.blobs
        except OSError as e:
            raise errors.from_os_error(e, action, what) from None
        except errors.InvalidArgument as e:  # a special file inside the directory
            raise errors.InvalidArgument(f"{what}: {e.details}", action) from None
        if not ref.kind:
            raise errors.InvalidArgument(f"{what}: {local} is not a file or a directory", action)
        refs.append(ref)
        for blob in found:
            blobs.setdefault(blob.digest, blob)
    return refs, list(blobs.values())


def check_workspace_path(field, path):
    """InvalidArgument naming `field` unless `path` is relative and stays in
    its directory (ValidateWorkspacePath, common/job_spec.cc): the
    scheduler's records are trusted no further than a user's argument."""
    parts = path.split("/")
    if not path or path.startswith("/") or ".." in parts or all(p in ("", ".") for p in parts):
        raise errors.InvalidArgument(f'{field}: "{path}" is not a path inside the workspace')


def _chunks(blob):
    """The UploadChunks of `blob`: the first names it; a file is read as it goes."""
    first = content_pb2.BlobRef(digest=blob.digest, size=blob.size)
    if blob.data is not None:
        pieces = [blob.data[i:i + _CHUNK] for i in range(0, len(blob.data), _CHUNK)] or [b""]
        for i, piece in enumerate(pieces):
            yield content_pb2.UploadChunk(blob=first if i == 0 else None, data=piece)
        return
    with open(blob.path, "rb") as f:
        data = f.read(_CHUNK)
        yield content_pb2.UploadChunk(blob=first, data=data)
        while data:
            data = f.read(_CHUNK)
            if data:
                yield content_pb2.UploadChunk(data=data)


def upload_missing(conn, blobs, action="submit"):
    """Uploads the `blobs` (hashing.Blob) the store lacks over `conn` (a
    Connection); returns (blobs uploaded, bytes uploaded). Errors name the
    blob and its file; a file that changed since it was hashed is rejected
    by the store (InvalidArgument)."""
    missing = set()
    for start in range(0, len(blobs), _FIND_BATCH):
        batch = blobs[start:start + _FIND_BATCH]
        request = content_pb2.FindMissingBlobsRequest(
            blobs=[content_pb2.BlobRef(digest=b.digest, size=b.size) for b in batch])
        response = conn.unary(conn.content.FindMissingBlobs, request, action)
        missing.update(ref.digest for ref in response.missing)
    count = size = 0
    for blob in blobs:
        if blob.digest not in missing:
            continue
        what = (f"upload {blob.path} (blob {blob.digest})" if blob.path
                else f"upload directory blob {blob.digest}")
        try:
            conn.content.Upload(_chunks(blob), timeout=stream_timeout(conn.timeout, blob.size))
        except grpc.RpcError as e:
            err = conn.error(e, action)
            hint = (" (did the file change after it was hashed?)"
                    if isinstance(err, errors.InvalidArgument) and blob.path else "")
            raise type(err)(f"{what}: {err.details}{hint}", action) from None
        missing.discard(blob.digest)
        count += 1
        size += blob.size
    return count, size


def download(conn, digest, size, path, action):
    """Downloads blob `digest` of `size` bytes into `path`, checked and
    renamed into place (DataLoss when the bytes do not match; NotFound when
    the store lacks the blob). Nothing is left behind on failure."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".part-", dir=directory)
    try:
        hasher, received = xxhash.xxh3_128(), 0
        with os.fdopen(fd, "wb") as out:
            call = conn.content.Download(content_pb2.DownloadRequest(digest=digest),
                                         timeout=stream_timeout(conn.timeout, size))
            try:
                for chunk in call:
                    received += len(chunk.data)
                    if received > size:
                        call.cancel()
                        break
                    hasher.update(chunk.data)
                    out.write(chunk.data)
            except grpc.RpcError as e:
                raise conn.error(e, action) from None
            out.flush()
            os.fsync(out.fileno())
        if received != size:
            raise errors.DataLoss(f"blob {digest}: got {received} bytes, expected {size}",
                                  action)
        if hasher.hexdigest() != digest:
            raise errors.DataLoss(f"blob {digest}: content hashes to {hasher.hexdigest()}",
                                  action)
        os.replace(tmp, path)
    except OSError as e:
        raise errors.from_os_error(e, action, f"download {path}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
