#!/usr/bin/env bash
# Installs what nodecri needs on a Debian 12 machine, as root: the build toolchain for the
# addon, libseccomp, and the real kernel-facing tools the tests use (CNI plugins, an OCI
# registry, busybox for test images, iproute2/iptables/nsenter, runc for the benchmarks).
# Idempotent: packages already present are left alone.
set -euo pipefail

packages=(
  build-essential python3 pkg-config   # node-gyp
  libseccomp-dev                       # seccomp filters compiled in the addon
  containernetworking-plugins          # real CNI plugins in /usr/lib/cni
  docker-registry                      # a real OCI registry on 127.0.0.1 for pull tests
  apache2-utils                        # htpasswd -B for the registry with basic auth
  iproute2 iptables util-linux procps iputils-ping  # ip, nsenter, unshare, ps, ping
  runc                                 # the peer in bench/
  containerd                           # the peer of bench/image-pull (ctr images pull)
  curl ca-certificates
)

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps.sh: run as root (it uses apt-get)" >&2
  exit 1
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Test images and rootfs need a *static* busybox. Debian's busybox-static and busybox
# (dynamic) packages exclude each other, and a machine may need the dynamic one (the CRI
# conformance kit does): so the static binary is unpacked from its package to a place of
# our own, whichever of the two is installed.
static_busybox=/usr/local/lib/nodecri/busybox-static
if [ ! -x "$static_busybox" ]; then
  work=$(mktemp -d)
  (cd "$work" && apt-get download busybox-static >/dev/null 2>&1 || { apt-get update -qq && apt-get download busybox-static >/dev/null; })
  dpkg-deb -x "$work"/busybox-static_*.deb "$work/x"
  install -D -m 0755 "$work/x/bin/busybox" "$static_busybox"
  rm -rf "$work"
fi

# Debian's docker-registry package starts its own service on :5000 where an init system
# runs it; the tests start their own registries on free ports and need none of it.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet docker-registry 2>/dev/null; then
  systemctl disable --now docker-registry >/dev/null 2>&1 || true
fi

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  echo "install-deps.sh: nodecri needs Node.js 20 or newer (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi
