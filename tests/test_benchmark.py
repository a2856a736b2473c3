"""tools/benchmark.py: every mode measured, the text-cache switch really switches."""
import json

import pytest
import torch
from conftest import tiny_denseclip_cfg
from denseclip_helpers import TOY_CONFIG, load_tool
from mmseg.registry import MODELS


@pytest.fixture(scope='module')
def bench():
    return load_tool('benchmark')


def test_benchmark_rows_on_the_toy_config(bench, tmp_path, capsys):
    out_json = str(tmp_path / 'bench.json')
    results = bench.main([TOY_CONFIG, '--size', '64', '--iters', '2',
                          '--warmup', '1', '--device', 'cpu', '--json',
                          out_json])
    printed = capsys.readouterr().out
    assert len(results) == 1 and results[0]['device'] == 'cpu'
    rows = results[0]['rows']
    labels = [r['label'] for r in rows]
    assert labels[0] == 'inference whole, text cache'
    assert labels[1] == 'inference whole, no text cache'
    assert labels[2].startswith('inference slide (') and 'crops of 128x128' \
        in labels[2]
    assert labels[-1] == 'train step (AdamW)'
    assert len(rows) == 5
    for row in rows:
        assert row['img_per_s'] > 0 and row['peak_bytes'] > 2**20
        assert row['label'] in printed
    assert json.load(open(out_json))[0]['rows'] == rows


def test_text_cache_switch(bench, rn_clip):
    """Off: the text encoder runs on every forward; on again: once."""
    model = MODELS.build(tiny_denseclip_cfg(rn_clip.shape)).eval()
    calls = []
    forward = model.text_encoder.forward
    model.text_encoder.forward = lambda *a, **k: calls.append(1) or forward(
        *a, **k)
    inputs = torch.randn(1, 3, 64, 64)
    metas = bench.metas(64, 64, 1)
    with torch.no_grad():
        bench.disable_text_cache(model)
        for _ in range(3):
            model.inference(inputs, metas)
        assert len(calls) == 3
        bench.enable_text_cache(model)
        for _ in range(3):
            model.inference(inputs, metas)
    assert len(calls) == 4


def test_no_slide_setting_is_a_clear_error(bench):
    with pytest.raises(SystemExit, match='no slide setting'):
        bench.main([TOY_CONFIG, '--size', '64', '--iters', '1', '--modes',
                    'slide', '--cfg-options', 'model.test_cfg.mode=whole'])
