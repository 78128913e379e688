#!/bin/sh
# Installs the Debian packages aigw needs to build, test and benchmark, when they are missing.
# Safe to run repeatedly: it does nothing when everything is present.
set -e
PKGS="build-essential clang libclang-rt-14-dev pkg-config libuv1-dev libhttp-parser-dev libssl-dev \
libcjson-dev libyajl-dev libyaml-dev libpcre2-dev libhiredis-dev zlib1g-dev libbrotli-dev libcmocka-dev \
nginx-light wrk openssl ca-certificates curl"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# The machine image ships Node.js with npm; Debian's nodejs+npm only when there is none.
command -v npm >/dev/null 2>&1 || missing="$missing nodejs npm"
if [ -n "$missing" ]; then
    echo "deps: installing$missing"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
# Node packages for the end-to-end tests (official client SDKs) and the MCP conformance suite
# (which brings its own Node 22 as an npm package), from the lock files.
for d in tests/e2e tests/mcp-conformance; do
    if [ -f "$d/package-lock.json" ] && [ ! -d "$d/node_modules" ]; then
        echo "deps: npm ci ($d)"
        (cd "$d" && npm ci --no-audit --no-fund --loglevel=error)
    fi
done
