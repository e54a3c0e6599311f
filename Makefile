# The two commands of the README: `make run` and `make test`. Everything else is their plumbing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run run-s3 cluster test fuzz lint typecheck bench-import bench-api bench-load bench-scale clean setup

setup: $(STAMP)
	@./scripts/ensure-system-deps.sh

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "openims needs Python >= 3.11")'
	@# Debian ships venv separately (python3-venv): install it when creating the venv fails.
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) 2>/dev/null || { rm -rf $(VENV); \
	  ./scripts/ensure-system-deps.sh python3-venv && $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

run: setup
	$(BIN)/openims serve

# The same service with users' buckets and the image store on a local SeaweedFS (S3) engine.
run-s3: setup
	$(BIN)/openims serve-s3

# Scaled out on this machine: PostgreSQL (the local server, else a throw-away one in data/cluster/pg),
# SeaweedFS, two API processes (8080, 8081) and two workers. Ctrl-C stops them all.
cluster: setup
	$(BIN)/openims cluster

test: setup
	@command -v haproxy >/dev/null || ./scripts/ensure-system-deps.sh haproxy
	@test -x /usr/bin/chromium || ./scripts/ensure-system-deps.sh chromium  # tests/console (Playwright)
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup

# Schemathesis against a real server's /openapi.json, longer than in `make test`: more examples per
# operation and a random seed (OPENIMS_FUZZ_EXAMPLES, OPENIMS_FUZZ_SEED override them).
fuzz: setup
	OPENIMS_FUZZ_EXAMPLES=$${OPENIMS_FUZZ_EXAMPLES:-60} OPENIMS_FUZZ_SEED=$${OPENIMS_FUZZ_SEED:-random} \
	  $(BIN)/python -m pytest -q -s -m fuzz tests/fuzz

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy src

bench-import: setup
	$(BIN)/python bench/import_bench.py

bench-api: setup
	@command -v wrk >/dev/null || ./scripts/ensure-system-deps.sh wrk
	$(BIN)/python bench/api_bench.py

bench-load: setup
	$(BIN)/python bench/load_bench.py

# Imports/min with 1-3 workers, API req/s with 1 and 2 processes, queue turnover: PostgreSQL + SeaweedFS.
bench-scale: setup
	@command -v wrk >/dev/null || ./scripts/ensure-system-deps.sh wrk
	$(BIN)/python bench/scale_bench.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
