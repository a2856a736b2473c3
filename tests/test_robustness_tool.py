"""Robustness runs: ``tools/test.py --corrupt``, ``tools/robustness.py`` sweeps.

The sweep runs here in a small form on the toy problem (random-weight toy
DenseCLIP, 2 toy images, 2 types x 2 levels + clean), interrupted and resumed.
"""
import copy
import json
import os
import os.path as osp

import numpy as np
import pytest
from denseclip_helpers import TOY_CONFIG, load_tool
from mmengine.config import Config

from denseclip.datasets.corrupt import CORRUPTIONS, REFERENCE_CORRUPTIONS
from denseclip.engine.corruption_setup import add_corruption
from denseclip.engine.data_checks import add_data_checks


@pytest.fixture(scope='module')
def toy_files(shared_toy_files):
    """The random-weight toy CLIP and the toy dataset (read only)."""
    return shared_toy_files


@pytest.fixture(scope='module')
def robustness():
    return load_tool('robustness')


def _types(steps):
    return [s['type'] if isinstance(s, dict) else [t['type'] for t in s]
            for s in steps]


def test_corrupt_goes_right_after_loading_in_the_test_and_tta_pipelines():
    cfg = Config.fromfile(TOY_CONFIG)
    places = add_corruption(cfg, 'spatter', 4)
    assert places == ['test_dataloader.dataset.pipeline', 'tta_pipeline',
                      'test_pipeline']
    test_steps = cfg.test_dataloader.dataset.pipeline
    assert _types(test_steps) == ['LoadImageFromFile', 'Corrupt', 'Resize',
                                  'LoadAnnotations', 'PackSegInputs']
    assert test_steps[1] == dict(type='Corrupt', name='spatter', level=4,
                                 seed=0)
    assert _types(cfg.tta_pipeline)[:3] == ['LoadImageFromFile', 'Corrupt',
                                            'TestTimeAug']
    # the training pipeline is left alone
    assert 'Corrupt' not in _types(cfg.train_dataloader.dataset.pipeline)
    # a second call replaces the step instead of corrupting twice
    add_corruption(cfg, 'gaussian_blur', 1)
    assert _types(cfg.test_dataloader.dataset.pipeline).count('Corrupt') == 1
    assert cfg.test_dataloader.dataset.pipeline[1]['name'] == 'gaussian_blur'


def test_with_tta_the_corrupted_image_goes_to_every_scale_and_flip():
    cfg = Config.fromfile(TOY_CONFIG)
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline  # as --tta does
    add_corruption(cfg, 'motion_blur', 2)
    assert _types(cfg.test_dataloader.dataset.pipeline) == [
        'LoadImageFromFile', 'Corrupt', 'TestTimeAug']


def test_corrupt_reaches_pipelines_inside_wrappers():
    cfg = Config.fromfile(TOY_CONFIG)
    add_data_checks(cfg)  # tools/test.py's NameFilesOnError wrapper
    inner = copy.deepcopy(cfg.test_dataloader.dataset)
    cfg.test_dataloader.dataset = dict(type='ConcatDataset',
                                       datasets=[inner, copy.deepcopy(inner)])
    places = add_corruption(cfg, 'jpeg_compression', 5)
    assert places[:2] == ['test_dataloader.dataset.datasets.0.pipeline',
                          'test_dataloader.dataset.datasets.1.pipeline']
    for dataset in cfg.test_dataloader.dataset.datasets:
        (wrapper, ) = dataset.pipeline
        assert wrapper['type'] == 'NameFilesOnError'
        assert _types(wrapper['transforms'])[:2] == ['LoadImageFromFile',
                                                     'Corrupt']


def test_corruption_arguments_are_checked():
    cfg = Config.fromfile(TOY_CONFIG)
    before = cfg.pretty_text
    assert add_corruption(cfg, None, None) == []
    assert cfg.pretty_text == before
    with pytest.raises(ValueError, match='--corrupt NAME --severity'):
        add_corruption(cfg, 'spatter', None)
    with pytest.raises(ValueError, match='valid types: gaussian_noise, '):
        add_corruption(cfg, 'rain', 2)
    cfg.test_dataloader.dataset.pipeline = [dict(type='PackSegInputs')]
    with pytest.raises(ValueError, match='test_dataloader.dataset.pipeline '
                       'has no LoadImageFromFile'):
        add_corruption(cfg, 'spatter', 2)


def test_test_py_options(capsys):
    test_tool = load_tool('test')
    args = test_tool.parse_args(['c.py', '--corrupt', 'shot_noise',
                                 '--severity', '3'])
    assert (args.corrupt, args.severity) == ('shot_noise', 3)
    with pytest.raises(SystemExit):
        test_tool.parse_args(['c.py', '--corrupt', 'rain', '--severity', '3'])
    err = capsys.readouterr().err
    assert "invalid choice: 'rain'" in err
    assert all(name in err for name in CORRUPTIONS)
    with pytest.raises(SystemExit):
        test_tool.parse_args(['c.py', '--corrupt', 'fog', '--severity', '6'])


def test_the_corrupted_test_set_is_corrupted_the_same_way_every_time(
        toy_files):
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS
    init_default_scope('mmseg')

    def first_input(name=None, level=None):
        cfg = Config.fromfile(TOY_CONFIG)
        cfg.test_dataloader.dataset.data_root = toy_files.data_root
        add_corruption(cfg, name, level)
        dataset = DATASETS.build(cfg.test_dataloader.dataset)
        return dataset[0]['inputs'].numpy().astype(np.float64)

    clean = first_input()
    noisy = first_input('gaussian_noise', 3)
    assert clean.shape == noisy.shape
    assert np.abs(noisy - clean).mean() > 10
    assert np.array_equal(noisy, first_input('gaussian_noise', 3))


def test_sweep_arguments(robustness):
    args = robustness.parse_args(['c.py'])
    assert args.corruptions == list(REFERENCE_CORRUPTIONS)
    assert args.severities == [1, 2, 3, 4, 5]
    assert args.work_dir == osp.join('work_dirs', 'robustness', 'c')
    args = robustness.parse_args(['c.py', '--corruptions', 'fog', 'all',
                                  '--severities', '5', '1', '5'])
    assert args.corruptions[0] == 'fog'
    assert sorted(args.corruptions) == sorted(CORRUPTIONS)
    assert args.severities == [1, 5]
    for bad in (['--corruptions', 'rain'], ['--severities', '0']):
        with pytest.raises(SystemExit):
            robustness.parse_args(['c.py'] + bad)


class _Interrupted(Exception):
    pass


@pytest.mark.slow
def test_small_toy_sweep_is_resumable(robustness, toy_files, tmp_path,
                                      capsys, monkeypatch):
    work_dir = str(tmp_path / 'sweep')
    argv = [
        TOY_CONFIG, '--corruptions', 'gaussian_noise', 'jpeg_compression',
        '--severities', '1', '5', '--work-dir', work_dir, '--cfg-options',
        f'model.pretrained={toy_files.clip_file}',
        f'test_dataloader.dataset.data_root={toy_files.data_root}',
        'test_dataloader.dataset.indices=2', 'test_dataloader.num_workers=0'
    ]
    # interrupted while measuring the third cell
    real_load = robustness.load_test_tool
    calls, interrupt_at = [], [3]

    def interrupting_tool():
        tool = real_load()
        real_main = tool.main

        def main(test_argv):
            calls.append(test_argv)
            if len(calls) in interrupt_at:
                raise _Interrupted()
            return real_main(test_argv)

        tool.main = main
        return tool

    monkeypatch.setattr(robustness, 'load_test_tool', interrupting_tool)
    with pytest.raises(_Interrupted):
        robustness.main(argv)
    with open(osp.join(work_dir, 'robustness.json')) as f:
        assert sorted(json.load(f)['cells']) == ['clean',
                                                 'gaussian_noise/1']
    # each cell ran through tools/test.py with its options
    assert '--corrupt' not in calls[0]
    assert calls[1][calls[1].index('--corrupt'):][:4] == [
        '--corrupt', 'gaussian_noise', '--severity', '1']
    capsys.readouterr()

    # run again: the two measured cells are skipped, the other three run
    calls.clear()
    interrupt_at.clear()
    result = robustness.main(argv)
    out = capsys.readouterr().out
    assert result['measured'] == 3 and len(calls) == 3
    lines = [l for l in out.splitlines() if l.startswith('[robustness] ')
             and '/5 ' in l and 'testing' not in l]
    assert len(lines) == 5  # one progress line per cell
    assert 'measured earlier, skipped' in lines[0]
    assert 'measured earlier, skipped' in lines[1]
    assert all('mIoU' in l for l in lines)
    cells = result['cells']
    assert sorted(cells) == ['clean', 'gaussian_noise/1', 'gaussian_noise/5',
                             'jpeg_compression/1', 'jpeg_compression/5']
    for cell in cells.values():
        assert {'mIoU', 'aAcc', 'mAcc'} <= set(cell['metrics'])
        assert 0 <= cell['metrics']['mIoU'] <= 100
    # each corrupted cell's run had the Corrupt step, right after loading
    # (the config each run dumped into its work dir)
    for key in cells:
        dumped = Config.fromfile(osp.join(
            work_dir, 'cells', key.replace('/', '_'), 'denseclip_toy.py'))
        (wrapper, ) = dumped.test_dataloader.dataset.pipeline
        steps = wrapper['transforms']  # NameFilesOnError
        if key == 'clean':
            assert 'Corrupt' not in _types(steps)
        else:
            name, level = key.split('/')
            assert _types(steps)[:2] == ['LoadImageFromFile', 'Corrupt']
            assert (steps[1]['name'], steps[1]['level']) == (name,
                                                             int(level))

    # the outputs
    paths = result['paths']
    rows = open(paths['csv']).read().splitlines()
    assert rows[0].startswith('corruption,severity,')
    assert [r.split(',')[:2] for r in rows[1:]] == [
        ['clean', '0'], ['gaussian_noise', '1'], ['gaussian_noise', '5'],
        ['jpeg_compression', '1'], ['jpeg_compression', '5']]
    table = open(paths['md']).read()
    assert '| corruption | level 1 | level 5 | mean | mean - clean |' in table
    assert '| gaussian_noise |' in table and '| jpeg_compression |' in table
    assert f'clean: {cells["clean"]["metrics"]["mIoU"]:.2f} mIoU' in table
    import cv2
    png = cv2.imread(paths['png'])
    assert png is not None and png.shape[0] > 100 and png.shape[1] > 100

    # a third run measures nothing and leaves the results as they were
    before = open(osp.join(work_dir, 'robustness.json')).read()
    calls.clear()
    assert robustness.main(argv)['measured'] == 0 and not calls
    assert open(osp.join(work_dir, 'robustness.json')).read() == before
    assert not [f for f in os.listdir(work_dir) if f.endswith('.part')]

    # results of other settings are never mixed in
    with pytest.raises(SystemExit, match='other settings.*cfg_options'):
        robustness.main(argv + ['test_dataloader.dataset.indices=3'])
