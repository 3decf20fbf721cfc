#!/usr/bin/env bash
# Builds tests/flood (a Go LiveKit participant that sends 10,000 data packets a second, for
# the flood tests) into bin/tp-flood. Idempotent: rebuilt only when its sources change.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source_dir="$root/tests/flood"
target="$root/bin/tp-flood"
stamp="$root/bin/.tp-flood.sum"
want=$(cat "$source_dir/go.mod" "$source_dir/go.sum" "$source_dir/main.go" | sha256sum | cut -d' ' -f1)
if [[ -x "$target" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    exit 0
fi
command -v go >/dev/null || { echo "install-flood: Go is required to build tp-flood" >&2; exit 1; }
echo "install-flood: building tp-flood (first run downloads its modules)" >&2
start=$(date +%s)
mkdir -p "$root/bin"
(cd "$source_dir" && go build -trimpath -o "$target" .)
echo "$want" > "$stamp"
echo "install-flood: built in $(( $(date +%s) - start ))s" >&2
