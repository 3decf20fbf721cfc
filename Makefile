# Two commands on a fresh machine: `make up` and `make test`. Both set themselves up.
VENV := .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin

.PHONY: setup up test check lint typecheck fast fuzz bench clean

setup:
	@scripts/debian-packages.sh
	@scripts/setup.sh

## The local stack with the echo bot, and a synthetic participant's echo demo (Ctrl-C stops).
up: setup
	$(BIN)/talkplatform-agents up --demo

## The whole suite: unit, service contract, store on SQLite and MariaDB, and end to end
## against the real livekit-server in a network namespace (two pytest processes at once:
## scripts/test.sh says how).
test: setup
	@scripts/test.sh

## ruff, mypy --strict and the fast tests (no server, no namespace).
check: setup lint typecheck fast

lint:
	$(BIN)/ruff check talkplatform_agents agents tests bench
	$(BIN)/ruff format --check talkplatform_agents agents tests bench

typecheck:
	$(BIN)/mypy

fast:
	$(BIN)/pytest -q -m "not integration and not mysql"

## The HTTP API against its OpenAPI document (schemathesis), at length: FUZZ_EXAMPLES
## generated requests per operation and mode (`make test` runs 10).
FUZZ_EXAMPLES ?= 300
fuzz: setup
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest tests/fuzz -m "not integration" -q -s -p no:cacheprovider --timeout=0

bench: setup
	$(PY) bench/token_service.py
	$(PY) bench/echo_rtt.py
	$(PY) bench/greenroom_capacity.py
	$(PY) bench/load_cost.py
	$(PY) bench/chat_relay.py
	$(PY) bench/admit_latency.py
	$(PY) bench/bot_density.py
	$(PY) bench/rooms_per_process.py
	$(PY) bench/recovery.py
	$(PY) bench/recorder_cost.py
	$(PY) bench/transcriber_cost.py
	$(PY) bench/web_join.py
	$(PY) bench/sip_cost.py

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
