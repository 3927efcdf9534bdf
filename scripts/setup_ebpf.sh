#!/usr/bin/env bash
# Kernel-side prerequisites of the eBPF receiver (receivers/ebpf), idempotent.
#
# Why each step:
#  - BCC (Debian python3-bpfcc 0.26) compiles BPF C at run time with clang and needs kernel
#    headers; this kernel ships none, so Debian's linux-headers-amd64 stand in, linked where
#    BCC looks (/lib/modules/$(uname -r)/{build,source}).  Our programs never dereference kernel
#    structs by header layout (tracepoint args + BTF offsets), so a header/kernel mismatch is
#    harmless.
#  - tracefs is not mounted on a fresh boot of this kernel; BCC and `doctor` need it.
#  - the PyPI package named `bcc` is unrelated: the venv gets Debian's module through a .pth.
set -euo pipefail

VENV="${VENV:-$(cd "$(dirname "$0")/.." && pwd)/.venv}"
PKGS=(python3-bpfcc bpfcc-tools linux-headers-amd64 bpftrace bpftool libcap2-bin)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup_ebpf: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends "${missing[@]}" \
    || { apt-get update && apt-get install -y --no-install-recommends "${missing[@]}"; }
fi

# kernel header links, only where missing
kdir="/lib/modules/$(uname -r)"
mkdir -p "$kdir"
hdr_arch=$(ls -d /usr/src/linux-headers-*-amd64 2>/dev/null | sort -V | tail -n1 || true)
hdr_common=$(ls -d /usr/src/linux-headers-*-common 2>/dev/null | sort -V | tail -n1 || true)
if [[ ! -e "$kdir/build" ]]; then
  [[ -n "$hdr_arch" ]] || { echo "setup_ebpf: no /usr/src/linux-headers-*-amd64" >&2; exit 1; }
  ln -sfn "$hdr_arch" "$kdir/build"
fi
if [[ ! -e "$kdir/source" && -n "$hdr_common" ]]; then
  ln -sfn "$hdr_common" "$kdir/source"
fi

# tracefs (and debugfs, which older BCC paths look under)
if [[ ! -e /sys/kernel/tracing/events ]]; then
  mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || echo "setup_ebpf: could not mount tracefs" >&2
fi
if ! mountpoint -q /sys/kernel/debug 2>/dev/null; then
  mount -t debugfs nodev /sys/kernel/debug 2>/dev/null || true
fi

# Debian's bcc module into the venv (a .pth keeps it in sync with the package)
if [[ -x "$VENV/bin/python" ]]; then
  site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  if [[ ! -e "$site/bcc" ]]; then
    ln -sfn /usr/lib/python3/dist-packages/bcc "$site/bcc"
  fi
  "$VENV/bin/python" -c 'import bcc, sys; print("bcc", bcc.__file__)' \
    || { echo "setup_ebpf: bcc not importable from $VENV" >&2; exit 1; }
fi
echo "setup_ebpf: ok"
