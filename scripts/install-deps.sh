#!/usr/bin/env bash
# Installs the Debian packages clew needs to build and test, if any are missing.
# Runs `apt-get update` first only when something has to be installed.
set -euo pipefail

PKGS=(
  cmake make gcc clang clang-format pkg-config git
  libevent-dev libjansson-dev libyaml-dev libcurl4-openssl-dev zlib1g-dev
  libnghttp2-dev libzstd-dev libisal-dev libxxhash-dev libcmocka-dev libclang-rt-14-dev protobuf-compiler curl nghttp2-client
  python3 python3-py-zipkin nodejs npm
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    # node and npm may come from outside Debian on a developer machine: accept them on PATH
    case "$p" in
      nodejs) command -v node >/dev/null 2>&1 && continue ;;
      npm) command -v npm >/dev/null 2>&1 && continue ;;
    esac
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
  else
    echo "install-deps: missing packages (${missing[*]}) and not root; install them and retry" >&2
    exit 1
  fi
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
