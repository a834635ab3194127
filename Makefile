# Two commands matter: `make demo` and `make test`. Both set up what they need.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAGE  ?= dev

.PHONY: demo test unit integration up postgres venv bench clean check-catalog package

demo: venv postgres
	$(PY) -m devstack demo

test: venv postgres
	$(PY) -m pytest

unit: venv
	$(PY) -m pytest tests/unit

integration: venv postgres
	$(PY) -m pytest tests/integration

up: venv postgres
	$(PY) -m devstack up

# CloudFormation for a real account: chalice's SAM template merged with infra/resources.json.
# First the stage's least-privilege IAM policies (.chalice/policy-$(STAGE)-*.json) from the catalog.
package: venv
	$(PY) -m chalicelib.policies $(STAGE)
	$(PY) infra/template.py > infra/resources.json
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} $(VENV)/bin/chalice package --stage $(STAGE) \
		--merge-template infra/resources.json out/
	$(VENV)/bin/cfn-lint out/sam.json

check-catalog: venv
	$(PY) -m chalicelib.pipelines check chalicelib/pipelines.toml

bench: venv postgres
	$(PY) bench/copy_throughput.py
	$(PY) bench/autoload.py
	$(PY) bench/migrate.py

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

# PostgreSQL >= 15 server binaries (devstack runs its own throwaway server).
postgres:
	@scripts/ensure-postgres.sh

clean:
	rm -rf $(VENV) .devstack .pytest_cache
