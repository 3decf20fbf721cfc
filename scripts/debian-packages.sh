#!/usr/bin/env bash
# Installs the Debian packages the suite needs, when they are missing:
# iproute2 (network namespaces), mariadb-server (the store tests' production database) and
# coturn (TURN relay for the preflight check); e2fsprogs' chattr (the recorder's write-error
# test: an immutable directory refuses even root); espeak-ng and sox (the transcriber's test
# speech); redis-server (the two-node LiveKit cluster's tests), docker-compose (validates
# docker-compose.yml; no Docker engine is needed for that) and chromium (the web pages'
# tests; playwright's own browser download is not reachable).
set -euo pipefail
need=()
command -v ip >/dev/null || need+=(iproute2)
command -v mariadbd >/dev/null || [[ -x /usr/sbin/mariadbd ]] || need+=(mariadb-server)
command -v turnserver >/dev/null || need+=(coturn)
command -v chattr >/dev/null || need+=(e2fsprogs)  # a recording directory made unwritable
command -v espeak-ng >/dev/null || need+=(espeak-ng)  # test speech for the transcriber
command -v sox >/dev/null || need+=(sox)
command -v redis-server >/dev/null || need+=(redis-server)  # multi-node LiveKit's shared state
command -v docker-compose >/dev/null || need+=(docker-compose)  # `config -q` checks the compose file
command -v wget >/dev/null || need+=(wget)  # the compose file's livekit health check, run natively
command -v npm >/dev/null || need+=(nodejs npm)  # builds the web pages (scripts/build-web.sh)
command -v chromium >/dev/null || need+=(chromium)  # the web pages' tests, driven by playwright
command -v sipp >/dev/null || need+=(sip-tester)  # the phone side of the SIP tests
command -v pkg-config >/dev/null || need+=(pkg-config)  # LiveKit SIP's cgo build:
pkg-config --exists opus 2>/dev/null || need+=(libopus-dev)
pkg-config --exists opusfile 2>/dev/null || need+=(libopusfile-dev)
pkg-config --exists soxr 2>/dev/null || need+=(libsoxr-dev)
[[ -e /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ]] || need+=(fonts-noto-color-emoji)  # chat reactions in the pages' screenshots
[[ ${#need[@]} -eq 0 ]] && exit 0
if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
    echo "debian-packages: please install: ${need[*]} (needs root and apt-get)" >&2
    exit 1
fi
echo "debian-packages: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
