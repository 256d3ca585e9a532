#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora (tests/fuzz/corpus/<target>/).

The seeds are small: the examples, the docs' test vectors, and the bad
inputs hand-written before the fuzzers existed (paths with "..", NUL bytes,
invalid UTF-8, deep YAML, cycles). Protobuf seeds are encoded by protoc from
text format, so they follow the .proto files. Inputs that once crashed a
target are kept beside them as regress-<what> files, written by hand and
never touched here.

    tests/fuzz/make_seeds.py     # rewrites every seed-* file
"""
import glob
import os
import struct
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PROTOS = os.path.join(ROOT, "protos")


def encode(message, text, proto):
    """The wire bytes of `text` (protobuf text format) as deja.v1.`message`."""
    return subprocess.run(
        ["protoc", "-I", PROTOS, f"--encode=deja.v1.{message}", f"deja/v1/{proto}"],
        input=text.encode(), capture_output=True, check=True).stdout


def xxh128(data):
    """XXH3-128 hex, as common/hash.h writes it (xxhsum -H2)."""
    out = subprocess.run(["xxhsum", "-H2", "-"], input=data, capture_output=True,
                         check=True).stdout
    return out.split()[0].decode()


def write(target, name, data):
    directory = os.path.join(HERE, "corpus", target)
    os.makedirs(directory, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(directory, f"seed-{name}"), "wb") as f:
        f.write(data)


def clean():
    for path in glob.glob(os.path.join(HERE, "corpus", "*", "seed-*")):
        os.remove(path)


# ---- pipeline_yaml: "PARAMS\nYAML" ----

TINY = "name: tiny\nnodes:\n  - name: hello\n    command: [echo, hi]\n"
FULL = """name: mnist
project: demo
reuse: true
params:
  epochs: 3
  threshold: "0.9"
apps:
  py:
    command: [python3, train.py, "--epochs", "${params.epochs}", "--mode=${pipeline.threshold}"]
    version: "1"
    env: {MODE: fast}
    image: debian:12
    platform: {gpu: "1"}
    reuse: false
    side_effects: true
    cache_key: [epochs]
nodes:
  - name: preprocess
    command: [sh, -c, "echo ${pipeline.threshold} > data.npz && touch out/a.csv"]
    version: 2
    env: {LEVEL: "${pipeline.threshold}"}
    outputs: [data.npz, "out/*.csv"]
  - name: train
    app: py
    params: {epochs: "${pipeline.epochs}", seed: 7, dry: false}
    outputs: [model.bin, "metrics/*.json"]
    memoization: on
    force: true
    reuse_job_id: j12
  - name: evaluate
    app: {command: [python3, eval.py, "${inputs.model}", "${inputs.all}"], version: "1"}
    memoization: inherit
edges:
  - preprocess.output.data.npz -> train.input.dataset
  - [preprocess.output.*, evaluate.input.all]
  - {from: train.output.model.bin, to: evaluate.input.model, path: in/model.bin}
"""
CYCLE = """name: p
nodes:
  - {name: a, command: [cat, "${inputs.x}"], outputs: [x]}
  - {name: b, command: [cat, "${inputs.x}"], outputs: [x]}
edges:
  - a.output.x -> b.input.x
  - b.output.x -> a.input.x
"""
ESCAPES = """name: p
reuse: false
params: {x: "1"}
nodes:
  - name: a
    command: [echo, "$${pipeline.x}", "${pipeline.x}", "${params.y}"]
    params: {y: "${pipeline.x}"}
    env: {LIT: "$${pipeline.x}"}
"""
BAD_VALUES = """name: p
nodes:
  - name: a
    command: [echo, "a\\0b", "\\xff"]
    params: {nul: "x\\0y"}
    outputs: ["../escape", "/abs", "ok/../../up", "./"]
"""
LOCAL = """name: p
nodes:
  - name: a
    command: [wc, "${inputs.labels}"]
    inputs: {labels: data/labels.csv, other: {path: /etc/hostname, workspace_path: ../x}}
"""


def seed_pipeline_yaml():
    write("pipeline_yaml", "tiny", "\n" + TINY)
    write("pipeline_yaml", "full", "\n" + FULL)
    write("pipeline_yaml", "override", "epochs=5;threshold=0.1\n" + FULL)
    write("pipeline_yaml", "unknown-override", "nope=1\n" + FULL)
    write("pipeline_yaml", "cycle", "\n" + CYCLE)
    write("pipeline_yaml", "escapes", "\n" + ESCAPES)
    write("pipeline_yaml", "bad-values", "\n" + BAD_VALUES)
    write("pipeline_yaml", "local-inputs", "\n" + LOCAL)
    with open(os.path.join(ROOT, "examples", "pipeline", "pipeline.yaml")) as f:
        write("pipeline_yaml", "example", "\n" + f.read())
    write("pipeline_yaml", "deep", "\nname: p\nnodes: " + "[" * 200 + "]" * 200 + "\n")
    write("pipeline_yaml", "anchors",
          "\nname: p\nx: &a [echo, hi]\nnodes:\n  - {name: a, command: *a}\n"
          "  - {name: b, command: *a, <<: {outputs: [o]}}\n")
    write("pipeline_yaml", "invalid-utf8", b"\nname: p\xff\nnodes:\n  - {name: a, command: [e]}\n")


# ---- job_spec: a byte (even: JobSpec, odd: PipelineSpec), then wire bytes ----

MINIMAL_SPEC = 'project: "default" app { name: "echo" command: "echo" command: "hi" }'
FULL_SPEC = """
project: "ml"
app {
  name: "train" version: "2.1"
  command: "python3" command: "train.py" command: "--lr" command: "${params.lr}"
  env { key: "B" value: "2" } env { key: "A" value: "1" }
  image: "debian:12" platform { key: "arch" value: "x86_64" }
}
params { key: "lr" value: "0.1" } params { key: "epochs" value: "3" }
inputs { name: "data" kind: "dir" digest: "0123456789abcdef0123456789abcdef" }
outputs: "model/*.bin" outputs: "metrics.json"
"""
BAD_SPECS = {
    "nul-param": 'app { command: "echo" command: "${params.p}" } params { key: "p" value: "a\\000b" }',
    "dotdot-output": 'app { command: "true" } outputs: "../x"',
    "non-hex-digest": ('app { command: "cat" command: "${inputs.f}" } '
                       'inputs { name: "f" kind: "file" digest: "../../../../../../../etc/passwd" }'),
    "unknown-ref": 'app { command: "echo" command: "${inputs.nope}" }',
    "escape": 'app { command: "echo" command: "$${params.x}" command: "${" }',
    "long-name": 'app { name: "' + "a" * 200 + '" command: "x" }',
}
PIPELINE_SPEC = """
name: "p" project: "default" reuse: true
nodes { name: "a" app { name: "a" command: "echo" } outputs: "x" }
nodes { name: "b" app { name: "b" command: "cat" command: "${inputs.x}" } }
edges { from_node: "a" from_output: "x" to_node: "b" to_input: "x" }
"""
PIPELINE_CYCLE = """
name: "p"
nodes { name: "a" app { command: "cat" command: "${inputs.x}" } outputs: "x" }
nodes { name: "b" app { command: "cat" command: "${inputs.x}" } outputs: "x" }
edges { from_node: "a" from_output: "x" to_node: "b" to_input: "x" }
edges { from_node: "b" from_output: "x" to_node: "a" to_input: "x" }
"""


def seed_job_spec():
    write("job_spec", "vector-1", b"\0" + encode("JobSpec", MINIMAL_SPEC, "job.proto"))
    write("job_spec", "vector-2", b"\0" + encode("JobSpec", FULL_SPEC, "job.proto"))
    for name, text in BAD_SPECS.items():
        write("job_spec", name, b"\0" + encode("JobSpec", text, "job.proto"))
    write("job_spec", "pipeline", b"\1" + encode("PipelineSpec", PIPELINE_SPEC, "pipeline.proto"))
    write("job_spec", "pipeline-cycle",
          b"\1" + encode("PipelineSpec", PIPELINE_CYCLE, "pipeline.proto"))


# ---- paths: "GLOB\nPATH" ----

def seed_paths():
    cases = {
        "plain": "out/*.csv\nout/a.csv",
        "doublestar": "**/*.json\nmetrics/run/1.json",
        "dotdot": "../x\na/../../b",
        "absolute": "/etc/*\n/etc/passwd",
        "dot": "./\n.",
        "empty-components": "a//b\na//b",
        "nul": "a\0b\na\0c",
        "class": "[a-z]?\\*\nb1*",
        "digest": "*\n0123456789abcdef0123456789abcdef",
        "job-id": "j*\nj12",
        "invalid-utf8": "\xff\n\xc0\xaf",
    }
    for name, text in cases.items():
        write("paths", name, text.encode("latin-1"))


# ---- blobs: a byte (even: directory blob, odd: manifest), then the blob ----

def dir_blob(entries):
    def u64(v):
        return struct.pack("<Q", v)

    def s(b):
        if isinstance(b, str):
            b = b.encode()
        return u64(len(b)) + b

    out = s("deja.dir.v1") + u64(len(entries))
    for name, kind, executable, digest, size, target in sorted(entries):
        out += s(name) + s(kind) + u64(executable) + s(digest) + u64(size) + s(target)
    return out


def seed_blobs():
    d = "0123456789abcdef0123456789abcdef"
    write("blobs", "dir-empty", b"\0" + dir_blob([]))
    write("blobs", "dir", b"\0" + dir_blob([
        ("a.txt", "file", 0, d, 5, ""), ("bin", "file", 1, d, 9, ""),
        ("sub", "dir", 0, d, 60, ""), ("link", "symlink", 0, "", 0, "../a.txt")]))
    write("blobs", "dir-dotdot", b"\0" + dir_blob([("..", "dir", 0, d, 1, "")]))
    write("blobs", "dir-non-hex", b"\0" + dir_blob([("x", "file", 0, "../../../../../../../../etc/pw", 1, "")]))
    write("blobs", "manifest", b"\1" + encode("Manifest", f"""
        files {{ path: "logs/stdout" size: 3 mode: 33188 digest: "{d}" }}
        files {{ path: "out/model.bin" size: 9 mode: 33060 digest: "{d}" }}
        files {{ path: "link" size: 5 mode: 41471 digest: "{d}" }}""", "job.proto"))
    # A symlink to the workspace's sibling, then a file through it.
    write("blobs", "manifest-through-link", b"\1" + encode("Manifest", """
        files { path: "a" size: 10 mode: 41471 digest: "../outside" }
        files { path: "a/x" size: 1 mode: 33188 digest: "0123456789abcdef0123456789abcdef" }""",
                                                         "job.proto"))
    write("blobs", "manifest-dotdot", b"\1" + encode("Manifest", """
        files { path: "../x" size: 1 mode: 33188 digest: "0123456789abcdef0123456789abcdef" }""",
                                                   "job.proto"))


# ---- worker_logs ----

def framed(payload):
    return struct.pack("=I", len(payload)) + payload + xxh128(payload).encode()


def expiry_ops(ops):
    out = struct.pack("=I", len(ops))
    for op in ops:
        job = op[1].encode()
        if op[0] == "set":
            out += b"S" + struct.pack("=I", len(job)) + job + struct.pack("=qI", op[2], op[3])
        else:
            out += b"F" + struct.pack("=I", len(job)) + job
    return out


def fingerprint(job, files):
    def s(b):
        b = b.encode() if isinstance(b, str) else b
        return struct.pack("=I", len(b)) + b
    out = s(job) + struct.pack("=I", len(files))
    for path in files:
        out += s(path) + struct.pack("=QQQqq", 1, 2, 3, 4, 5) + s("0123456789abcdef0123456789abcdef")
    return out


def length_prefixed(payloads):
    return b"".join(bytes([len(p)]) + p for p in payloads)


def seed_worker_logs():
    a = expiry_ops([("set", "j1", 1700000000000, 1), ("set", "j2", 0, 2)])
    b = expiry_ops([("forget", "j1"), ("set", "j-3", 1800000000000, 1)])
    write("worker_logs", "log", b"\0" + framed(a) + framed(b))
    write("worker_logs", "log-torn", b"\0" + framed(a) + framed(b)[:-5])
    write("worker_logs", "log-huge-size", b"\0" + struct.pack("=I", 0xFFFFFFF0) + b"x" * 40)
    write("worker_logs", "expiry", b"\1" + length_prefixed([a, b]))
    write("worker_logs", "expiry-torn", b"\1" + length_prefixed([a]) + bytes([200]) + b[:10])
    write("worker_logs", "expiry-bad-id",
          b"\1" + length_prefixed([expiry_ops([("set", "../../etc", 1, 1), ("set", "", 1, 1)])]))
    write("worker_logs", "fingerprints",
          b"\2" + length_prefixed([fingerprint("j1", ["a", "logs/stdout"]), fingerprint("j2", [])]))
    write("worker_logs", "old-record", b"\3j1\n1700000000000\n3\n")
    write("worker_logs", "old-record-bad", b"\3j2\n-5\nx\n")


# ---- hash_cache: a flags byte (1: fix checksums), then the file ----

def hash_record(key, digest, day):
    return struct.pack("<5Q", *key) + digest + struct.pack("<II", day, 0) + b"\0" * 8


def seed_hash_cache():
    records = [hash_record((1, 2, 3, 4_000_000_000, 5_000_000_000), bytes(range(16)), 20000),
               hash_record((1, 3, 3, 4, 5), bytes(range(16, 32)), 19000)]
    body = b"DEJAHC02" + struct.pack("<Q", len(records)) + b"".join(records)
    write("hash_cache", "two-records", b"\1" + body)
    write("hash_cache", "bad-checksums", b"\0" + body)
    write("hash_cache", "bad-count", b"\1" + b"DEJAHC02" + struct.pack("<Q", 1 << 60))
    write("hash_cache", "old-format", b"\0" + b"DEJAHC01" + struct.pack("<Q", 0))
    write("hash_cache", "empty", b"\0")


# ---- tickets: flags (1: sign, 2: no caller), "CALLER\nDIGEST\n", SignedTicket ----

def seed_tickets():
    d = "0123456789abcdef0123456789abcdef"
    blob = encode("BlobTicket", f'worker_id: "w1" job_id: "j1" attempt: 1 digests: "{d}" '
                                f'trees: "fedcba" expires_at_ms: 1900000000000', "worker.proto")
    peer = encode("PeerTicket", f'source_job_id: "j1" source_worker_id: "holder" '
                                f'destination_worker_id: "w1" manifest_digest: "{d}" '
                                f'expires_at_ms: 1900000000000', "peer.proto")

    def signed(kind, ticket):
        escaped = "".join(f"\\{b:03o}" for b in ticket)
        return encode("SignedTicket", f'ticket: "{escaped}" kind: "{kind}" signature: "x"',
                      "content.proto")

    header = f"w1\n{d}\n".encode()
    write("tickets", "blob-signed", b"\1" + header + signed("blob", blob))
    write("tickets", "blob-unsigned", b"\0" + header + signed("blob", blob))
    write("tickets", "blob-tree", b"\1" + b"w1\nfedcba99\n" + signed("blob", blob))
    write("tickets", "peer-holder", b"\1" + b"holder\n" + d.encode() + b"\n" + signed("peer", peer))
    write("tickets", "peer-fetch", b"\1" + header + signed("peer", peer))
    write("tickets", "kind-swap", b"\1" + header + signed("peer", blob))
    write("tickets", "no-caller", b"\3" + header + signed("blob", blob))


def main():
    clean()
    seed_pipeline_yaml()
    seed_job_spec()
    seed_paths()
    seed_blobs()
    seed_worker_logs()
    seed_hash_cache()
    seed_tickets()
    return 0


if __name__ == "__main__":
    sys.exit(main())
