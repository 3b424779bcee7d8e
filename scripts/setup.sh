#!/usr/bin/env bash
# Installs, with apt-get, what building and testing asyncflow needs on a fresh Debian 12
# machine. Idempotent: only missing packages are installed, and `apt-get update` runs (once)
# only when something must be installed. Non-interactive; run as root (or with sudo).
set -euo pipefail

packages=(
  build-essential g++ cmake ninja-build pkg-config  # toolchain (presets need cmake >= 3.25)
  clang clang-format                                # the clang preset (-Wthread-safety), format check
  libgtest-dev libgmock-dev googletest              # tests (GoogleTest + gmock)
  libbenchmark-dev                                  # bench/ (release preset)
  nlohmann-json3-dev                                # checkpoint reader
  python3-pandas                                    # checkpoint test: pandas reads our JSONL
  protobuf-compiler libprotobuf-dev                 # OTLP/protobuf encoding (our .proto files)
  libcpp-httplib-dev libssl-dev zlib1g-dev          # OTLP/HTTP(S) client, gzip, /metrics server
  python3-protobuf                                  # OTLP test receiver (decodes what we send)
  prometheus                                        # Prometheus test: a real server scrapes us
  openssl                                           # HTTPS test: a self-signed receiver certificate
)

missing=()
for pkg in "${packages[@]}"; do
  # `dpkg -s` also succeeds for removed packages whose config files remain: check the status.
  if ! dpkg -s "$pkg" 2>/dev/null | grep -q '^Status: install ok installed'; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

as_root=()
if ((EUID != 0)); then
  command -v sudo >/dev/null || { echo "setup: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  as_root=(sudo -n)
fi

echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
echo "setup: done"
