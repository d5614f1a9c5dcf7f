#!/usr/bin/env bash
# Installs the Debian packages that Vantage's tests and demo use as real
# peers, when they are missing. Safe to run repeatedly; does nothing when
# everything is present.
set -euo pipefail

# binary -> Debian package
declare -A need=(
  [git]=git
  [hg]=mercurial
  [prometheus-alertmanager]=prometheus-alertmanager
  [amtool]=prometheus-alertmanager
  [promtool]=prometheus
  [prometheus-blackbox-exporter]=prometheus-blackbox-exporter
  [chromium]=chromium
  [ssh-keygen]=openssh-client
  [ip]=iproute2
  [nft]=nftables
)
missing=()
for bin in "${!need[@]}"; do
  command -v "$bin" >/dev/null 2>&1 || missing+=("${need[$bin]}")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
pkgs=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
if [ "$(id -u)" != 0 ]; then
  echo "install-deps: missing packages: $pkgs (run as root: apt-get install -y $pkgs); tests that need them will skip" >&2
  exit 0
fi
echo "install-deps: installing $pkgs" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
