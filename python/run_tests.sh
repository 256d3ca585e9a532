#!/usr/bin/env bash
# Runs the Python client's tests against the daemons and CLI of BUILD_DIR.
#
#   python/run_tests.sh BUILD_DIR [PYTEST ARGS...]
#
# Needs no network and no pip install: generates the protobuf/gRPC modules
# (python/gen_protos.py, with Debian's protoc and grpc_python_plugin) into
# BUILD_DIR/python/deja/v1 beside a copy of the package, puts that on
# PYTHONPATH, points the tests at BUILD_DIR's binaries ($DEJA_BUILD_DIR) and
# runs pytest with Debian's python3 (python3-grpcio, python3-protobuf,
# python3-xxhash, python3-yaml, python3-pytest; $PYTHON overrides it).
set -euo pipefail

if [[ $# -lt 1 || ! -d "$1" ]]; then
  echo "usage: $0 BUILD_DIR [PYTEST ARGS...]" >&2
  exit 2
fi
build_dir=$(cd "$1" && pwd)
shift
here=$(cd "$(dirname "$0")" && pwd)
python=${PYTHON:-/usr/bin/python3}
out="$build_dir/python"

rm -rf "$out/deja"
mkdir -p "$out"
cp -r "$here/deja" "$out/deja"
rm -rf "$out/deja/v1" "$out/deja/__pycache__"
"$python" "$here/gen_protos.py" "$out"

export PYTHONPATH="$out${PYTHONPATH:+:$PYTHONPATH}"
export DEJA_BUILD_DIR="$build_dir"
export PYTHONDONTWRITEBYTECODE=1
# From $out: `python -m` puts the current directory first on sys.path, and
# python/deja (without the generated deja.v1) must not shadow the copy.
cd "$out"
exec "$python" -m pytest -q -p no:cacheprovider "$here/tests" "$@"
