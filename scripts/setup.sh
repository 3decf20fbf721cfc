#!/usr/bin/env bash
# Installs everything the project needs, idempotently and fast when already present:
# the project venv with its Python dependencies, the Go-built livekit-server and LiveKit SIP, and the web
# pages (npm, esbuild).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# One setup at a time: two at once (two make targets, parallel shells on a fresh
# machine) would race on the venv and on the server build's output.
mkdir -p "$root/var"
exec 9>"$root/var/.setup.lock"
flock 9
python=${PYTHON:-python3}
venv="$root/.venv"
stamp="$venv/.installed"

if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv"
    "$venv/bin/pip" install -q --upgrade pip
fi
# Reinstall only when the dependency list changed.
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    "$venv/bin/pip" install -q -e ".[dev]"
    echo "$want" > "$stamp"
fi
"$root/scripts/install-livekit.sh"
"$root/scripts/install-sip.sh"
"$root/scripts/install-flood.sh"
"$root/scripts/fetch-models.sh"
"$root/scripts/build-web.sh"
