# Shared by scripts/demo and scripts/test: install what is missing, build.
# Sourced, not run.

DEJA_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEJA_BUILD="${DEJA_BUILD:-$DEJA_ROOT/build}"
DEJA_BUILD_TYPE="${DEJA_BUILD_TYPE:-Release}"
# ccache keys on paths relative to the checkout, so another clone of the
# repository (CI's, a worktree) reuses what this one compiled.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$DEJA_ROOT}"
# The sanitizer builds carry line tables (-g1): without this ccache would key
# them on the build directory too, and no other clone could reuse them.
export CCACHE_NOHASHDIR="${CCACHE_NOHASHDIR:-1}"

# Debian 12 packages the build needs.
DEJA_PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config
  protobuf-compiler protobuf-compiler-grpc libprotobuf-dev libgrpc++-dev
  librocksdb-dev libxxhash-dev libabsl-dev libgtest-dev libgmock-dev libcli11-dev libyaml-cpp-dev
  libcurl4-openssl-dev nlohmann-json3-dev  # the Docker Engine API (common/docker_engine.h)
  libcpp-httplib-dev       # the daemons' /metrics and the dashboard (common/http_endpoint.h)
  xxhash  # xxhsum: the baseline of benchmark B4 (bench/), which the tests smoke-run
)
# What scripts/test needs beyond the build.
DEJA_TEST_PACKAGES=(
  time                     # GNU time: the integration tests measure the CLI's own peak memory
  clang-format clang-tidy  # the format check and clang-tidy
  python3                  # tests/torture/torture.py
  clang-14 libfuzzer-14-dev libclang-rt-14-dev  # the fuzzers (tests/fuzz, build-fuzz)
  busybox-static           # the job image of the container tests (tests/containers)
  prometheus               # promtool checks the daemons' /metrics (tests/integration/operations_test.cc)
  chromium                 # drives the dashboard in tests/integration/dashboard_test.cc
  # The Python client's tests (python/run_tests.sh, Debian's /usr/bin/python3)
  python3-grpcio python3-protobuf python3-xxhash python3-yaml python3-pytest
)

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# deja_install_deps [PACKAGE...]: DEJA_PACKAGES and the packages named.
deja_install_deps() {
  local missing=()
  for pkg in "${DEJA_PACKAGES[@]}" "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" ||
      missing+=("$pkg")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    return 0
  fi
  log "installing ${missing[*]}"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
}

deja_build() {
  log "building ($DEJA_BUILD_TYPE) in $DEJA_BUILD"
  if [ ! -f "$DEJA_BUILD/build.ninja" ]; then
    cmake -S "$DEJA_ROOT" -B "$DEJA_BUILD" -G Ninja -DCMAKE_BUILD_TYPE="$DEJA_BUILD_TYPE" >/dev/null
  fi
  ninja -C "$DEJA_BUILD" "$@"
}

# deja_build_sanitized address|thread [TARGET...]: builds in build-asan or
# build-tsan (beside $DEJA_BUILD) with DEJA_SANITIZE, optimised lightly (-O1)
# with line tables, so reports name files and lines.
deja_build_sanitized() {
  local kind="$1" dir
  shift
  case "$kind" in
    address) dir="$DEJA_BUILD-asan" ;;
    thread) dir="$DEJA_BUILD-tsan" ;;
    *) echo "deja_build_sanitized: address or thread, not '$kind'" >&2; return 2 ;;
  esac
  log "building with DEJA_SANITIZE=$kind in $dir"
  if [ ! -f "$dir/build.ninja" ]; then
    cmake -S "$DEJA_ROOT" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
      -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" -DDEJA_SANITIZE="$kind" >/dev/null
  fi
  ninja -C "$dir" "$@"
}

# deja_build_fuzz [TARGET...]: the libFuzzer targets of tests/fuzz (all of
# them by default) in build-fuzz (beside $DEJA_BUILD): clang, ASan + UBSan
# and libFuzzer's coverage on every target, -O1 with line tables.
deja_build_fuzz() {
  local dir="$DEJA_BUILD-fuzz"
  log "building the fuzzers in $dir"
  if [ ! -f "$dir/build.ninja" ]; then
    CXX=clang++-14 cmake -S "$DEJA_ROOT" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
      -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" -DDEJA_SANITIZE=address -DDEJA_FUZZ=ON >/dev/null
  fi
  if [ $# -eq 0 ]; then set -- deja_fuzzers; fi
  ninja -C "$dir" "$@"
}
