#!/usr/bin/env bash
# Builds the pinned livekit-server from the Go module proxy into bin/livekit-server.
# Idempotent: a binary that already reports the pinned version is kept as is.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=versions.env
. "$root/scripts/versions.env"
target="$root/bin/livekit-server"
stamp="$root/bin/.livekit-server.version"

if [[ -x "$target" && -f "$stamp" && "$(cat "$stamp")" == "$LIVEKIT_SERVER_VERSION" ]]; then
    exit 0
fi
command -v go >/dev/null || { echo "install-livekit: Go is required to build livekit-server" >&2; exit 1; }

build_dir="$root/bin/.gobuild"
mkdir -p "$build_dir"
echo "install-livekit: building livekit-server $LIVEKIT_SERVER_VERSION (first run takes several minutes)" >&2
start=$(date +%s)
GOBIN="$build_dir" go install "$LIVEKIT_SERVER_MODULE@$LIVEKIT_SERVER_VERSION"
mv -f "$build_dir/server" "$target"
echo "$LIVEKIT_SERVER_VERSION" > "$stamp"
echo "install-livekit: built $("$target" --version 2>&1 | head -1) in $(( $(date +%s) - start ))s" >&2
