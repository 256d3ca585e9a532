"""Content digests and job identity, byte for byte as Deja computes them.

- A digest is the XXH3-128 of bytes, as 32 lowercase hex digits (the
  canonical big-endian form): common/hash.h.
- A directory is a tree of blobs: each directory's blob is the canonical
  encoding "deja.dir.v1" of its entries, so its digest is a Merkle digest of
  everything below it (docs/content-store.md, common/tree.cc). Symlinks are
  recorded with their target, never followed.
- A job's identity (job_hash) is the XXH3-128 of the canonical encoding
  "deja.job.v1" of its spec (docs/job-identity.md, common/job_identity.cc).

The test vectors of those documents are checked in tests/test_offline.py.
Pure functions over the local disk; thread-safe.
"""

import os
import stat
from dataclasses import dataclass
from typing import List, Optional

import xxhash

from deja import errors
from deja.spec import normalize_job_spec

DIRECTORY_TAG = b"deja.dir.v1"
JOB_IDENTITY_TAG = b"deja.job.v1"
_CHUNK = 1 << 20


def _u64(value):
    return value.to_bytes(8, "little")


def _str(value):
    data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    return _u64(len(data)) + data


def _map(mapping):
    """u64(count) then str(key) str(value) in ascending byte order of the key."""
    items = sorted((k.encode("utf-8"), v) for k, v in mapping.items())
    return _u64(len(items)) + b"".join(_str(k) + _str(v) for k, v in items)


def digest_bytes(data):
    """The digest of `data` (bytes): 32 lowercase hex digits."""
    return xxhash.xxh3_128_hexdigest(data)


def digest_file(path):
    """The digest of the file at `path`, read in 1 MiB chunks (OSError on failure)."""
    hasher = xxhash.xxh3_128()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            hasher.update(chunk)
    return hasher.hexdigest()


@dataclass(frozen=True)
class DirEntry:
    """One entry of a directory blob. `name` is bytes (one path component);
    `kind` is "file", "dir" or "symlink"; files and dirs have `digest` and
    `size` (of their blob), symlinks `target` (bytes)."""

    name: bytes
    kind: str
    digest: str = ""
    size: int = 0
    executable: bool = False
    target: bytes = b""


def encode_directory(entries):
    """The canonical bytes ("deja.dir.v1") of a directory of DirEntry."""
    out = [_str(DIRECTORY_TAG), _u64(len(entries))]
    for e in sorted(entries, key=lambda e: e.name):
        link = e.kind == "symlink"
        out += [_str(e.name), _str(e.kind), _u64(1 if e.kind == "file" and e.executable else 0),
                _str("" if link else e.digest), _u64(0 if link else e.size),
                _str(e.target if link else b"")]
    return b"".join(out)


@dataclass(frozen=True)
class Blob:
    """A blob to store: a file on disk (`path`) or bytes in memory (`data`)."""

    digest: str
    size: int
    path: Optional[str] = None
    data: Optional[bytes] = None


@dataclass(frozen=True)
class Tree:
    """A directory's digest and size (of its root blob), every distinct blob
    below it (root first), and the bytes of all its files."""

    digest: str
    size: int
    blobs: List[Blob]
    total_bytes: int


def digest_tree(root):
    """Digests the directory at `root` as DigestTree does (common/tree.cc).

    Raises InvalidArgument for a socket, FIFO or device below it, and
    OSError when something cannot be read.
    """
    blobs = {}  # digest -> Blob, in discovery order (dicts keep it)
    total = 0

    def directory(path):
        nonlocal total
        entries = []
        for name in os.listdir(os.fsencode(path)):
            child = os.path.join(os.fsencode(path), name)
            st = os.lstat(child)
            if stat.S_ISDIR(st.st_mode):
                entry = directory(child)
                entries.append(DirEntry(name, "dir", entry.digest, entry.size))
            elif stat.S_ISREG(st.st_mode):
                digest = digest_file(child)
                total += st.st_size
                blobs.setdefault(digest, Blob(digest, st.st_size, path=os.fsdecode(child)))
                entries.append(DirEntry(name, "file", digest, st.st_size,
                                        executable=bool(st.st_mode & 0o111)))
            elif stat.S_ISLNK(st.st_mode):
                entries.append(DirEntry(name, "symlink", target=os.readlink(child)))
            else:
                raise errors.InvalidArgument(
                    f"{os.fsdecode(child)}: not a regular file, directory or symlink")
        data = encode_directory(entries)
        blob = Blob(digest_bytes(data), len(data), data=data)
        blobs.setdefault(blob.digest, blob)
        return blob

    top = directory(root)
    # The root was found last (post-order); callers want it first.
    rest = [b for d, b in blobs.items() if d != top.digest]
    return Tree(top.digest, top.size, [top] + rest, total)


def canonical_job_bytes(spec):
    """The "deja.job.v1" encoding of a deja.v1.JobSpec (after normalize_job_spec)."""
    spec = normalize_job_spec(spec)
    app = spec.app
    params = dict(spec.params)
    if app.cache_key:
        params = {k: v for k, v in params.items() if k in set(app.cache_key)}
    inputs = sorted(spec.inputs, key=lambda i: i.name.encode("utf-8"))
    outputs = sorted(o.encode("utf-8") for o in spec.outputs)
    out = [_str(JOB_IDENTITY_TAG), _str(app.name), _str(app.version), _u64(len(app.command))]
    out += [_str(word) for word in app.command]
    out += [_map(app.env), _str(app.image), _map(app.platform), _map(params), _u64(len(inputs))]
    for i in inputs:
        out += [_str(i.name), _str(i.kind), _str(i.digest), _str(i.path or "inputs/" + i.name)]
    out += [_u64(len(outputs))] + [_str(o) for o in outputs]
    if app.image_id:
        out += [_str("image_id"), _str(app.image_id)]
    return b"".join(out)


def job_hash(spec):
    """The job_hash the scheduler gives a deja.v1.JobSpec (docs/job-identity.md).

    For an image named by a tag, the scheduler may pin the image's ID at
    submit (docs/containers.md), which changes the hash; this function
    cannot know that.
    """
    return digest_bytes(canonical_job_bytes(spec))
