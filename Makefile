# denseclip: every target installs what it needs into .venv first (idempotent).
PY := .venv/bin/python

.PHONY: install test demo benchmark

install:
	@bash tools/install.sh

test: install
	$(PY) -m pytest -q tests

# The embedded default: toy CLIP weights + toy ADE20K-layout dataset, train, slide-test, mIoU.
demo: install
	$(PY) tools/toy_demo.py

benchmark: install
	$(PY) tools/benchmark.py
