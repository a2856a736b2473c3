# denseclip: every target installs what it needs into .venv first (idempotent).
PY := .venv/bin/python

.PHONY: install test test-quick demo benchmark

install:
	@bash tools/install.sh

# the whole suite (CI runs this)
test: install
	$(PY) -m pytest -q tests

# the edit loop: without the tests marked slow or integration (pytest.ini)
test-quick: install
	$(PY) -m pytest -q -m "not slow and not integration" tests

# The embedded default: toy CLIP weights + toy ADE20K-layout dataset, train, slide-test, mIoU.
demo: install
	$(PY) tools/toy_demo.py

benchmark: install
	$(PY) tools/benchmark.py

# MaskCLIP / MaskCLIP+ without labels: a toy CLIP trained on toy image-caption
# pairs (once, cached in work_dirs/toy), then MaskCLIP (test only) or MaskCLIP+.
.PHONY: demo-maskclip demo-maskclip-vit demo-maskclip-plus maskclip-table
demo-maskclip: install
	$(PY) tools/toy_demo.py --config configs/toy/maskclip_toy.py

demo-maskclip-vit: install
	$(PY) tools/toy_demo.py --config configs/toy/maskclip_vit_toy.py

demo-maskclip-plus: install
	$(PY) tools/toy_demo.py --config configs/toy/maskclip_plus_toy.py

# docs/maskclip.md's toy table: RN / ViT x ks / pd, MaskCLIP+, data seeds 0 and 1
maskclip-table: install
	$(PY) tools/toy_maskclip_table.py

# docs/ovss.md's toy table: MaskCLIP / SCLIP / ClearCLIP / NACLIP / SC-CLIP /
# ProxyCLIP on the toy ViT CLIP, without and with PAMR, data seeds 0 and 1
.PHONY: toy-method-table
toy-method-table: install
	$(PY) tools/toy_method_table.py

# docs/toy_vfm.md's table: the toy VFM (trained once on data seed 0's images)
# scored on data seeds 0-3
.PHONY: toy-vfm
toy-vfm: install
	$(PY) tools/toy_vfm.py --data-seeds 0 1 2 3 --train-on seed0
