#!/usr/bin/env bash
# Checks that pkg/fastpath's committed BPF objects and Go bindings are what
# bpf/fastpath.c generates: regenerates them into a temporary directory with
# the package's own go:generate line and compares byte for byte. Needs clang,
# llvm-strip and libbpf-dev (scripts/deps.sh installs them as root on Debian).
# The output depends on the clang version: the committed files come from
# Debian 12's clang 14, like CI's.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
pkg=pkg/fastpath
missing=()
for tool in clang llvm-strip; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
[ -e /usr/include/bpf/bpf_helpers.h ] || missing+=(libbpf-dev)
if [ ${#missing[@]} -ne 0 ]; then
  echo "check-bpf-generated: missing ${missing[*]} (run scripts/deps.sh as root)" >&2
  exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
FASTPATH_GEN_DIR=$tmp $GO generate ./$pkg/
status=0
for f in "$tmp"/*; do
  name=$(basename "$f")
  if [ ! -e "$pkg/$name" ]; then
    echo "check-bpf-generated: $pkg/$name is not committed" >&2
    status=1
  elif ! cmp -s "$f" "$pkg/$name"; then
    echo "check-bpf-generated: $pkg/$name differs from what bpf/fastpath.c generates" >&2
    status=1
  fi
done
for f in "$pkg"/fastpath_bpfe[lb].*; do
  if [ ! -e "$tmp/$(basename "$f")" ]; then
    echo "check-bpf-generated: $f is no longer generated" >&2
    status=1
  fi
done
if [ $status -ne 0 ]; then
  echo "check-bpf-generated: run 'make generate' ($(clang --version | head -n 1)) and commit the result" >&2
  exit 1
fi
echo "check-bpf-generated: $pkg is up to date"
