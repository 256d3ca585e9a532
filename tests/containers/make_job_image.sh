#!/usr/bin/env bash
# Builds a small job image without any registry: busybox (Debian's busybox-static) on an
# empty root, with an /etc/os-release of its own, imported into the local Docker Engine.
#
#   tests/containers/make_job_image.sh TAG [RELEASE]
#
# RELEASE goes into /etc/os-release (PRETTY_NAME="Deja test image RELEASE"), so two builds
# with different RELEASEs are different image content under the same TAG. Prints the image
# ID. Needs the docker CLI and /bin/busybox (busybox-static).
set -euo pipefail
tag="${1:?usage: make_job_image.sh TAG [RELEASE]}"
release="${2:-1}"
busybox="$(command -v busybox || true)"
[ -n "$busybox" ] || { echo "make_job_image: busybox is missing (apt-get install busybox-static)" >&2; exit 1; }
file -L "$busybox" 2>/dev/null | grep -q 'statically linked' || ldd "$busybox" 2>&1 | grep -q 'not a dynamic' ||
  { echo "make_job_image: $busybox is not statically linked (install busybox-static)" >&2; exit 1; }

root="$(mktemp -d "${TMPDIR:-/tmp}/deja-job-image.XXXXXX")"
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/workspace"
chmod 1777 "$root/tmp"
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
  [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done
cat >"$root/etc/os-release" <<OS
PRETTY_NAME="Deja test image $release"
NAME="Deja test image"
ID=deja-test
VERSION_ID=$release
OS
echo 'root:x:0:0:root:/:/bin/sh' >"$root/etc/passwd"
echo 'root:x:0:' >"$root/etc/group"
tar -C "$root" --numeric-owner --owner=0 --group=0 -c . |
  docker import -c 'ENV PATH=/bin' -c 'CMD ["sh"]' - "$tag" >/dev/null
docker image inspect --format '{{.Id}}' "$tag"
