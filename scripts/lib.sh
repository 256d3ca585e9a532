# Shared by scripts/demo and scripts/test: install what is missing, build.
# Sourced, not run.

DEJA_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEJA_BUILD="${DEJA_BUILD:-$DEJA_ROOT/build}"
DEJA_BUILD_TYPE="${DEJA_BUILD_TYPE:-Release}"

# Debian 12 packages the build needs.
DEJA_PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config
  protobuf-compiler protobuf-compiler-grpc libprotobuf-dev libgrpc++-dev
  librocksdb-dev libxxhash-dev libabsl-dev libgtest-dev libgmock-dev libcli11-dev libyaml-cpp-dev
  xxhash  # xxhsum: the baseline of benchmark B4 (bench/), which the tests smoke-run
)

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

deja_install_deps() {
  local missing=()
  for pkg in "${DEJA_PACKAGES[@]}"; do
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
