#!/usr/bin/env python3
"""Generates Deja's protobuf and gRPC Python modules from protos/.

Used by setup.py (at build time) and run_tests.sh. The protos import each
other as "deja/v1/job.proto", so generating into OUT gives OUT/deja/v1/
job_pb2.py (module deja.v1.job_pb2), scheduler_pb2_grpc.py and so on, with
an __init__.py so deja.v1 is a regular package. Nothing generated is
committed (python/.gitignore).

Tools, both from Debian 12: `protoc` (protobuf-compiler) and
`grpc_python_plugin` (protobuf-compiler-grpc); $PROTOC and
$GRPC_PYTHON_PLUGIN override where they are found.

    python3 gen_protos.py OUT [--protos DIR]
"""

import argparse
import glob
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_PROTOS = os.path.join(os.path.dirname(HERE), "protos")


def _tool(env, name):
    path = os.environ.get(env) or shutil.which(name)
    if not path:
        raise SystemExit(
            f"gen_protos: {name} not found (install Debian's "
            f"{'protobuf-compiler' if name == 'protoc' else 'protobuf-compiler-grpc'}"
            f", or set ${env})")
    return path


def generate(out_dir, proto_dir=DEFAULT_PROTOS):
    """Writes OUT_DIR/deja/v1/*_pb2.py, *_pb2_grpc.py and __init__.py.

    Raises SystemExit naming the problem when a tool or the protos are
    missing, or protoc fails.
    """
    protos = sorted(glob.glob(os.path.join(proto_dir, "deja", "v1", "*.proto")))
    if not protos:
        raise SystemExit(f"gen_protos: no deja/v1/*.proto under {proto_dir} "
                         "(set $DEJA_PROTOS to the repository's protos/)")
    target = os.path.join(out_dir, "deja", "v1")
    os.makedirs(target, exist_ok=True)
    command = [
        _tool("PROTOC", "protoc"), f"-I{proto_dir}",
        f"--python_out={out_dir}", f"--grpc_out={out_dir}",
        f"--plugin=protoc-gen-grpc={_tool('GRPC_PYTHON_PLUGIN', 'grpc_python_plugin')}",
    ] + protos
    result = subprocess.run(command, capture_output=True, text=True)
    # protoc warns about an unused import in worker.proto: only failures count.
    if result.returncode != 0:
        raise SystemExit(f"gen_protos: protoc failed:\n{result.stderr}")
    with open(os.path.join(target, "__init__.py"), "w") as init:
        init.write('"""Generated from protos/deja/v1 by gen_protos.py."""\n')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="directory that receives deja/v1/")
    parser.add_argument("--protos", default=os.environ.get("DEJA_PROTOS", DEFAULT_PROTOS),
                        help="the repository's protos/ directory")
    args = parser.parse_args()
    generate(args.out, args.protos)
    return 0


if __name__ == "__main__":
    sys.exit(main())
