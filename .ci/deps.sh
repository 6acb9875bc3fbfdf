#!/usr/bin/env bash
# .ci/deps.sh [--force]: install the Debian 12 packages cairn builds and tests with.
# Without --force it does nothing when every package is already installed.
set -euo pipefail
PKGS=(build-essential cmake pkg-config git openssl
      libuv1-dev libzstd-dev librdkafka-dev libprotobuf-c-dev protobuf-c-compiler
      libssl-dev liblmdb-dev lmdb-utils libjansson-dev libcmocka-dev libyaml-dev libpcre2-dev
      kcat procps iproute2 chromium
      clang libclang-rt-14-dev) # libFuzzer for tests/fuzz/run.sh
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ "${1:-}" = "--force" ] || [ ${#missing[@]} -gt 0 ]; then
  SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${PKGS[@]}" >/dev/null
fi
