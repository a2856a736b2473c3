"""tools/benchmark.py and denseclip.benchmark: every mode measured, the
text-cache switch really switches, the baseline and the reference pipeline
in the same run."""
import copy
import json

import pytest
import torch
from conftest import tiny_denseclip_cfg
from denseclip_helpers import TOY_CONFIG, load_tool
from mmengine.config import ConfigDict
from mmseg.models.segmentors import EncoderDecoder
from mmseg.registry import MODELS

from denseclip.benchmark.inputs import image_metas
from denseclip.benchmark.reference_pipeline import (as_ours, as_the_reference,
                                                    reference_slide_inference)


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
    assert results[0]['baseline'] is None  # only the default config has one
    rows = results[0]['rows']
    labels = [r['label'] for r in rows]
    assert labels[0] == 'inference whole, text cache'
    assert labels[1] == ('inference whole, reference (text encoder on every '
                         'forward)')
    assert labels[2] == 'inference slide (1 crop of 128x128), text cache'
    assert labels[3] == ('inference slide (1 crop of 128x128), reference '
                         'pipeline (text per crop, 1 at a time)')
    assert labels[-1] == 'train step (AdamW)'
    assert len(rows) == 5
    for row in rows:
        assert row['img_per_s'] > 0 and row['peak_bytes'] > 2**20
        assert row['cpu_s'] > 0
        assert row['label'] in printed
    ratios = results[0]['ratios']
    assert set(ratios) == {'whole inference, ours vs the reference',
                           'slide inference, ours vs the reference'}
    whole = ratios['whole inference, ours vs the reference']
    assert whole == pytest.approx(rows[0]['img_per_s'] / rows[1]['img_per_s'])
    assert f'ratio, whole inference, ours vs the reference: {whole:.2f}x' in \
        printed
    assert json.load(open(out_json))[0]['rows'] == rows


def test_baseline_rows_and_ratio_in_the_same_run(bench, capsys):
    results = bench.main([TOY_CONFIG, '--baseline', TOY_CONFIG, '--size', '64',
                          '--iters', '1', '--warmup', '0', '--device', 'cpu',
                          '--modes', 'train', '--amp'])
    printed = capsys.readouterr().out
    rows = results[0]['rows']
    assert [r['model'] for r in rows] == ['model', 'baseline']
    # the toy's CPU training step under --amp: bfloat16 autocast
    assert rows[0]['label'] == 'train step (AdamW, bfloat16 autocast)'
    assert '[baseline] train step' in printed
    ratio = results[0]['ratios']['train: model vs baseline']
    assert ratio == pytest.approx(rows[0]['img_per_s'] / rows[1]['img_per_s'])
    assert results[0]['baseline'][0]['config'] == 'configs/toy/denseclip_toy.py'
    # the baseline's weights and optimizer state are not counted in the
    # model's peak memory
    assert rows[0]['peak_bytes'] > 0


def test_default_config_gets_the_fpn_baseline(bench):
    args = bench.parse_args([])
    assert args.baseline == bench.DEFAULT_BASELINE
    assert bench.parse_args(['--baseline', 'none']).baseline is None
    assert bench.parse_args([TOY_CONFIG]).baseline is None
    with pytest.raises(SystemExit):
        bench.parse_args([TOY_CONFIG, '--baseline', 'nowhere.py'])
    with pytest.raises(SystemExit):
        bench.parse_args([TOY_CONFIG, '--compile', '--warmup', '0'])


def test_reference_pipeline_equals_mmseg_slide_inference(rn_clip):
    """The emulated reference (crops one by one, zero-padded and summed, text
    encoder per crop) computes what mmseg's slide_inference computes."""
    model = MODELS.build(tiny_denseclip_cfg(rn_clip.shape)).eval()
    model.test_cfg = ConfigDict(mode='slide', crop_size=(64, 64),
                                stride=(43, 43))
    inputs = torch.randn(1, 3, 64, 100)
    metas = image_metas(64, 100, 1)
    with torch.no_grad():
        as_the_reference(model)
        reference = reference_slide_inference(model, inputs,
                                              copy.deepcopy(metas))
        as_ours(model)
        mmseg = EncoderDecoder.slide_inference(model, inputs,
                                               copy.deepcopy(metas))
    torch.testing.assert_close(reference, mmseg, rtol=1e-5, atol=1e-6)


def test_reference_switch(rn_clip):
    """As the reference: the whole text encoder on every forward; as ours
    again: once, then cached."""
    model = MODELS.build(tiny_denseclip_cfg(rn_clip.shape)).eval()
    calls = []
    forward = model.text_encoder.forward
    model.text_encoder.forward = lambda *a, **k: calls.append(1) or forward(
        *a, **k)
    inputs = torch.randn(1, 3, 64, 64)
    metas = image_metas(64, 64, 1)
    with torch.no_grad():
        as_the_reference(model)
        assert not model.share_text_prefix
        for _ in range(3):
            model.inference(inputs, metas)
        assert len(calls) == 3
        as_ours(model)
        assert model.cache_text and model.share_text_prefix
        for _ in range(3):
            model.inference(inputs, metas)
    assert len(calls) == 4


def test_no_slide_setting_is_a_clear_error(bench):
    with pytest.raises(SystemExit, match='no slide setting'):
        bench.main([TOY_CONFIG, '--size', '64', '--iters', '1', '--modes',
                    'slide', '--cfg-options', 'model.test_cfg.mode=whole'])


def test_training_free_methods_side_by_side(bench, capsys):
    """--methods: each method's last block on the same MaskCLIP ViT config,
    whole and batched slide rows, img/s against MaskCLIP's."""
    results = bench.main([
        'configs/toy/maskclip_vit_toy.py', '--methods', 'maskclip', 'sclip',
        'naclip', '--size', '64', '--iters', '1', '--warmup', '0',
        '--device', 'cpu'])
    printed = capsys.readouterr().out
    rows = results[0]['rows']
    assert [(r['model'], r['mode']) for r in rows] == [
        (m, mode) for mode in ('whole', 'slide')
        for m in ('maskclip', 'sclip', 'naclip')]
    assert rows[3]['label'] == 'inference slide (1 crop of 224x224)'
    assert set(results[0]['ratios']) == {
        f'{mode}: {m} vs maskclip' for mode in ('whole', 'slide')
        for m in ('sclip', 'naclip')}
    assert 'maskclip_vit_toy.py as naclip: TrainingFreeSegmentor' in printed
    assert '[sclip] inference whole' in printed


def test_proxyclip_row_runs_its_vfm_on_random_weights(bench, capsys):
    """--methods proxyclip: DINO ViT-B/8 (the table's shape, random weights,
    no file) beside the CLIP; its row against MaskCLIP's."""
    results = bench.main([
        'configs/toy/maskclip_vit_toy.py', '--methods', 'maskclip',
        'proxyclip', '--size', '64', '--iters', '1', '--warmup', '0',
        '--device', 'cpu', '--modes', 'whole'])
    printed = capsys.readouterr().out
    rows = results[0]['rows']
    assert [r['model'] for r in rows] == ['maskclip', 'proxyclip']
    assert 'whole: proxyclip vs maskclip' in results[0]['ratios']
    assert '[proxyclip] inference whole' in printed
    # the VFM's 86M parameters are held beside the toy CLIP's
    assert rows[1]['peak_bytes'] > rows[0]['peak_bytes'] + 300e6


@pytest.mark.parametrize('config, holds', [
    (None, "model.type='DenseCLIP'"),  # the default config
    ('configs/toy/maskclip_toy.py',  # MaskCLIP, but on a ResNet CLIP
     "model.backbone.type='CLIPResNet'"),
])
def test_methods_on_another_config_is_a_named_error(bench, config, holds):
    """--methods on a config that is not a MaskCLIP ViT config: an error
    naming the config, what it holds and a config to give, before anything
    is measured (was: TypeError ... unexpected keyword argument
    'class_names' from deep inside the model build)."""
    with pytest.raises(SystemExit) as info:
        bench.main(([config] if config else []) + [
            '--methods', 'naclip', '--size', '64', '--iters', '1',
            '--warmup', '0', '--device', 'cpu'])
    message = str(info.value)
    named = config or 'configs/denseclip_fpn_r50_ade.py'
    assert '--methods naclip: ' in message and named in message
    assert 'is not a MaskCLIP ViT config' in message and holds in message
    assert 'e.g. configs/maskclip/maskclip_vit16_512x512_voc12aug_20.py' \
        in message
