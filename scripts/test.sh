#!/usr/bin/env bash
# The whole suite, in two pytest processes at once (`make test`):
# - the integration tests (the real stack in a network namespace; they spend much of their
#   time waiting on real-time media and on processes starting), in front;
# - everything else (unit, service, store on SQLite and MariaDB, the schema fuzzer), at the
#   lowest CPU priority, so that it only takes the time the first leaves idle and never
#   slows a test that measures something in real time.
# Its report is printed after the integration tests'. The exit status is the worse of two.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mkdir -p var
other_log=var/test-other.log
nice -n 19 .venv/bin/pytest -ra -m "not integration" -p no:cacheprovider --durations=10 \
    > "$other_log" 2>&1 &
other=$!
# Whatever ends this script (Ctrl-C, CI's timeout) ends the background run too.
trap 'kill "$other" 2>/dev/null' EXIT
.venv/bin/pytest -ra --durations=40 -m integration "$@"
integration=$?
wait "$other"
others=$?
trap - EXIT
echo
echo "=== unit, service, store and fuzz tests (run beside the integration tests) ==="
cat "$other_log"
echo "integration: exit $integration; the rest: exit $others"
if (( integration != 0 )); then exit "$integration"; fi
exit "$others"
