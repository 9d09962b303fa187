# `make run`: the product on embedded defaults. `make test`: the whole suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/outreach
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/outreach_bench
PYTEST_WORKERS ?= 2

.PHONY: run test bench lint format system-packages venv clean

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

# The embedded PostgreSQL (var/postgres) starts first and stops when the rest does (Ctrl-C).
run: venv
	mkdir -p var/mail
	$(BIN)/python scripts/local_postgres.py start
	trap '$(BIN)/python scripts/local_postgres.py stop' EXIT; trap 'exit 130' INT TERM; \
	$(BIN)/python manage.py migrate --noinput && \
	$(BIN)/python manage.py bootstrap_demo && \
	PATH="$(CURDIR)/$(BIN):$$PATH" PYTHONUNBUFFERED=1 $(BIN)/honcho start -f Procfile.dev

system-packages:
	./scripts/system-packages.sh

test: system-packages venv
	database_url=$$(./scripts/ensure-services.sh "$(TEST_DATABASE_URL)" $(BIN)/python) && \
	DATABASE_URL=$$database_url REDIS_URL=$(TEST_REDIS_URL) $(BIN)/pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

bench: system-packages venv
	database_url=$$(./scripts/ensure-services.sh "$(BENCH_DATABASE_URL)" $(BIN)/python) && \
	DATABASE_URL=$$database_url REDIS_URL=$(TEST_REDIS_URL) $(BIN)/python -m bench.run $(BENCH_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	-$(BIN)/python scripts/local_postgres.py stop
	-$(BIN)/python scripts/local_postgres.py stop --data var/postgres-test
	rm -rf var staticfiles
