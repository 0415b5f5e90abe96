# The two commands a new user needs:  make demo   and   make test
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install demo test lint typecheck unit compat bench clean

# Everything the two commands need, from one script that CI (.ci/run) runs too: Debian packages (as root or
# through sudo; otherwise it stops with the one command to run), kustomize built with Go (cached), the
# virtual environment (rebuilt only when pyproject.toml is newer), Kafka's jars from Maven Central.
# See what it would do with:  bash scripts/install.sh --dry-run
install:
	bash scripts/install.sh --venv $(VENV) --python $(PYTHON)

# Bring up the local stack (Kafka in KRaft mode), lay out the topics and follow the events live.
demo: install
	$(BIN)/tiltstream demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/pytest

# The broker and client tests again on the newest Kafka release, so both versions stay proven.
compat: install
	TILTSTREAM_BROKER_KAFKA_VERSION=4.4.0 $(BIN)/tiltstream broker fetch
	TILTSTREAM_BROKER_KAFKA_VERSION=4.4.0 $(BIN)/pytest tests/test_broker.py -q

# Everything CI runs: lint, strict typing, the test suite against a real broker.
test: lint typecheck unit compat

bench: install
	$(BIN)/python benchmarks/serde_throughput.py
	$(BIN)/python benchmarks/roundtrip_latency.py

clean:
	rm -rf $(VENV) build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache
