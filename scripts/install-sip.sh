#!/usr/bin/env bash
# Builds the pinned LiveKit SIP service into bin/livekit-sip, from the small Go module in
# scripts/livekit-sip/ (go.mod and go.sum committed). `go install ...@version` cannot: the
# module proxy refuses the module's version list, which it reads for deprecation notices;
# the exact version is served. Needs cgo's pkg-config, libopus, libopusfile and libsoxr
# (scripts/debian-packages.sh). Idempotent: a binary built from the pinned version is kept.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=versions.env
. "$root/scripts/versions.env"
module_dir="$root/scripts/livekit-sip"
target="$root/bin/livekit-sip"
stamp="$root/bin/.livekit-sip.version"

if ! grep -q "^require $LIVEKIT_SIP_MODULE $LIVEKIT_SIP_VERSION\$" "$module_dir/go.mod"; then
    echo "install-sip: $module_dir/go.mod does not require $LIVEKIT_SIP_MODULE $LIVEKIT_SIP_VERSION (versions.env)" >&2
    exit 1
fi
if [[ -x "$target" && -f "$stamp" && "$(cat "$stamp")" == "$LIVEKIT_SIP_VERSION" ]]; then
    exit 0
fi
command -v go >/dev/null || { echo "install-sip: Go is required to build livekit-sip" >&2; exit 1; }
for lib in opus opusfile soxr; do
    pkg-config --exists "$lib" || { echo "install-sip: lib$lib's development files are missing (scripts/debian-packages.sh)" >&2; exit 1; }
done
mkdir -p "$root/bin"
echo "install-sip: building livekit-sip $LIVEKIT_SIP_VERSION (first run takes several minutes)" >&2
start=$(date +%s)
(cd "$module_dir" && go build -o "$target.tmp" "$LIVEKIT_SIP_MODULE/cmd/livekit-sip")
mv -f "$target.tmp" "$target"
echo "$LIVEKIT_SIP_VERSION" > "$stamp"
echo "install-sip: built livekit-sip $LIVEKIT_SIP_VERSION in $(( $(date +%s) - start ))s" >&2
