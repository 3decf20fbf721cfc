#!/usr/bin/env bash
# Builds the web pages (web/) into web/dist, which the token service serves under /app/:
# `npm ci` from the committed lock file, the TypeScript check, then esbuild. Idempotent and
# fast when nothing changed (stamps of the lock file and of the sources).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
web="$root/web"
if ! command -v npm >/dev/null; then
    echo "build-web: Node.js and npm are needed to build the pages (web/)" >&2
    exit 1
fi
cd "$web"
deps=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ ! -f node_modules/.tp-installed || "$(cat node_modules/.tp-installed)" != "$deps" ]]; then
    # esbuild's own install script is not needed: its binary comes as an optional package.
    npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
    echo "$deps" > node_modules/.tp-installed
fi
sources=$(cat package-lock.json tsconfig.json build.mjs $(find src -type f | sort) | sha256sum | cut -d' ' -f1)
if [[ -f dist/.tp-built && "$(cat dist/.tp-built)" == "$sources" ]]; then
    exit 0
fi
rm -rf dist
node_modules/.bin/tsc --noEmit -p .
node build.mjs
echo "$sources" > dist/.tp-built
echo "build-web: built $(ls dist/*.js | wc -l) page bundles into web/dist" >&2
