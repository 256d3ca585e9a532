#!/usr/bin/env bash
# Make sure the base image of docker/Dockerfile exists locally.
#
# docker/Dockerfile starts FROM debian:bookworm-slim. Where a container registry is reachable,
# `docker build` pulls it and this script is not needed. Where none is (an air-gapped machine,
# or a development machine that reaches only Debian's package mirror), this script builds an
# equivalent image from Debian packages and tags it debian:bookworm-slim, so the Dockerfile
# builds unchanged:
#
#   debootstrap --variant=minbase bookworm ROOTFS MIRROR
#   + the apt/dpkg settings of the official slim image (deb822 sources with bookworm,
#     bookworm-updates and bookworm-security; no docs/man/locales; apt lists cleaned)
#   tar -C ROOTFS -c . | docker import -c 'CMD ["bash"]' - debian:bookworm-slim
#
# Idempotent: does nothing when the tag already exists; pulls it when a registry has it
# (set DEJA_BASE_NO_PULL=1 to skip that); else builds it (always, with --force). Installs
# debootstrap with apt-get when it is missing. Building needs root (debootstrap).
#
# Usage: docker/build-base-image.sh [--force] [IMAGE_TAG]    (default debian:bookworm-slim)
# Environment: DEJA_DEBIAN_MIRROR   the mirror (default: the host's apt mirror, else
#                                   http://deb.debian.org/debian)
#              DEJA_DEBIAN_SECURITY the security mirror (default: the host's, else
#                                   http://deb.debian.org/debian-security)
set -euo pipefail

force=0
if [ "${1:-}" = "--force" ]; then force=1; shift; fi
tag="${1:-debian:bookworm-slim}"
suite=bookworm

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'build-base-image: %s\n' "$*" >&2; exit 1; }

docker info >/dev/null 2>&1 || die "no Docker engine reachable (docker info failed)"

# Parallel runs (two ctest runs, say) build it once.
exec 9>"${TMPDIR:-/tmp}/deja-build-base-image.lock"
flock 9

if [ "$force" -eq 0 ] && docker image inspect "$tag" >/dev/null 2>&1; then
  log "$tag is present locally: nothing to do"
  exit 0
fi

# A registry, where there is one, has the real thing.
if [ "$force" -eq 0 ] && [ "${DEJA_BASE_NO_PULL:-0}" != 1 ]; then
  if timeout 300 docker pull -q "$tag" >/dev/null 2>&1; then
    log "$tag pulled from a registry"
    exit 0
  fi
  log "$tag: not present and no registry has it; building it from Debian packages"
fi

if [ "$(id -u)" -ne 0 ]; then
  die "building $tag from Debian packages needs root (debootstrap); run it as root"
fi

# The host's apt mirror (deb822 sources first, then the one-line format).
host_uri() {  # $1: a regex the URI's path must match (e.g. '/debian$')
  {
    grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}'
    grep -h '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
      sed -E 's/^deb +(\[[^]]*\] +)?//' | awk '{print $1}'
  } | grep -E "$1" | head -n 1 || true
}
mirror="${DEJA_DEBIAN_MIRROR:-$(host_uri '/debian/?$')}"
mirror="${mirror:-http://deb.debian.org/debian}"
security="${DEJA_DEBIAN_SECURITY:-$(host_uri '/debian-security/?$')}"
security="${security:-http://deb.debian.org/debian-security}"

if ! command -v debootstrap >/dev/null 2>&1; then
  log "installing debootstrap"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap
fi

rootfs="$(mktemp -d "${TMPDIR:-/tmp}/deja-rootfs.XXXXXX")"
cleanup() { rm -rf --one-file-system "$rootfs"; }
trap cleanup EXIT

log "debootstrap --variant=minbase $suite from $mirror (a few minutes)"
debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 || {
  tail -n 30 "$rootfs.log" >&2
  rm -f "$rootfs.log"
  die "debootstrap failed"
}
rm -f "$rootfs.log"

# What the official image (debuerreotype) sets up, so the Dockerfile sees the same system.
rm -f "$rootfs/etc/apt/sources.list"
cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
echo 'Apt::AutoRemove::SuggestsImportant "false";' >"$rootfs/etc/apt/apt.conf.d/docker-autoremove-suggests"
echo 'Acquire::GzipIndexes "true";' >"$rootfs/etc/apt/apt.conf.d/docker-gzip-indexes"
echo 'Acquire::Languages "none";' >"$rootfs/etc/apt/apt.conf.d/docker-no-languages"
# A mirror that serves a pinned snapshot needs the host's Valid-Until setting too.
if grep -rqsh '^Acquire::Check-Valid-Until *"false"' /etc/apt/apt.conf.d/; then
  echo 'Acquire::Check-Valid-Until "false";' >"$rootfs/etc/apt/apt.conf.d/docker-mirror-snapshot"
fi
mkdir -p "$rootfs/etc/dpkg/dpkg.cfg.d"
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
# The "slim" variant: no documentation, man pages or translations.
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/info/*
path-exclude /usr/share/man/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/*
EOF
find "$rootfs/usr/share/doc" -mindepth 2 -not -name copyright -not -type d -delete 2>/dev/null || true
find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
rm -rf "$rootfs"/usr/share/{info,man,locale,groff,linda,lintian}/* 2>/dev/null || true
printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d" && chmod 0755 "$rootfs/usr/sbin/policy-rc.d"
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
  "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/* "$rootfs"/tmp/* "$rootfs"/dev/* 2>/dev/null || true
: >"$rootfs/etc/machine-id"
rm -f "$rootfs/etc/hostname" "$rootfs/etc/resolv.conf"

log "docker import -> $tag"
tar --numeric-owner -C "$rootfs" -c . |
  docker import -c 'CMD ["bash"]' -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -m "debootstrap --variant=minbase $suite $mirror (docker/build-base-image.sh)" - "$tag" >/dev/null
log "$tag built locally from Debian packages ($(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}'))"
