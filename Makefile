# make demo     try mediapurge on this machine, nothing else to install
# make test     the whole test suite (starts the local PostgreSQL and Redis if they are down)
# make install  the virtualenv with mediapurge installed (editable)
# make clean    build output, caches and install stamps (distclean also removes .venv)

PYTHON ?= python3
VENV   ?= .venv
PIP    := $(VENV)/bin/pip
PIP_INSTALL := $(PIP) install --quiet --disable-pip-version-check

# Stamps make installs idempotent: pip runs again only when pyproject.toml (or the venv) changes.
INSTALL_STAMP := $(VENV)/.stamp-install
TEST_STAMP    := $(VENV)/.stamp-test

.PHONY: demo test install clean distclean

demo: $(INSTALL_STAMP)
	$(VENV)/bin/mediapurge demo

test: $(TEST_STAMP)
	bash .ci/services
	$(VENV)/bin/pytest -q

install: $(INSTALL_STAMP)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(INSTALL_STAMP): pyproject.toml | $(VENV)/bin/python
	$(PIP_INSTALL) -e .
	@touch $@

# The test extra is a superset of the plain install, so it satisfies both stamps.
$(TEST_STAMP): pyproject.toml | $(VENV)/bin/python
	$(PIP_INSTALL) -e '.[test]'
	@touch $@ $(INSTALL_STAMP)

clean:
	rm -rf build dist *.egg-info .pytest_cache .hypothesis
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +
	rm -f $(INSTALL_STAMP) $(TEST_STAMP)

distclean: clean
	rm -rf $(VENV)
