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
    with pytest.raises(SystemExit, match='measured on something else.*'
                       'cfg_options'):
        robustness.main(argv + ['test_dataloader.dataset.indices=3'])


# ------------------------------------------------- what a sweep resumes
# A stand-in for tools/test.py (its ``main`` returns the metrics): these
# tests are about which cells a sweep runs, keeps, refuses and writes.
METRICS = dict(aAcc=90.0, mIoU=50.0, mAcc=60.0)


class FakeTestTool:
    """Records each run's argv; returns :data:`METRICS`."""

    def __init__(self, metrics=METRICS):
        self.calls, self.metrics = [], dict(metrics)

    def main(self, argv):
        self.calls.append(list(argv))
        return dict(self.metrics)


@pytest.fixture
def fake_test_tool(robustness, monkeypatch):
    tool = FakeTestTool()
    monkeypatch.setattr(robustness, 'load_test_tool', lambda: tool)
    return tool


@pytest.fixture
def small_sweep(tmp_path):
    """A sweep's argv over a 2-image toy dataset and a stand-in CLIP file
    (nothing is run on them: :class:`FakeTestTool`)."""
    from denseclip.toy.data import make_toy_dataset
    data = str(tmp_path / 'data')
    make_toy_dataset(data, num_train=1, num_val=2, val_size=(32, 40),
                     train_size=(32, 32), seed=0)
    clip = tmp_path / 'clip.pt'
    clip.write_bytes(b'a CLIP file')
    work_dir = str(tmp_path / 'sweep')
    argv = [TOY_CONFIG, '--corruptions', 'gaussian_noise', '--severities',
            '1', '--work-dir', work_dir, '--cfg-options',
            f'model.pretrained={clip}',
            f'test_dataloader.dataset.data_root={data}']
    return argv, work_dir, data, clip


def _with_levels(argv, *levels):
    at = argv.index('--severities')
    return argv[:at + 1] + [str(l) for l in levels] + argv[at + 2:]


def test_a_resumed_sweep_refuses_cells_measured_on_other_data_or_weights(
        robustness, fake_test_tool, small_sweep):
    from denseclip.toy.data import make_toy_dataset
    argv, work_dir, data, clip = small_sweep
    assert robustness.main(argv)['measured'] == 2
    results = osp.join(work_dir, 'robustness.json')
    with open(results) as f:
        recorded = json.load(f)
    on = recorded['measured_on']
    assert on['data']['root'] == data and on['data']['images'] == 2
    assert on['weights']['model.pretrained']['path'] == str(clip)
    assert len(on['weights']['model.pretrained']['sha256']) == 64
    before = open(results).read()

    # the dataset written anew in place (another seed, the same names)
    make_toy_dataset(data, num_train=1, num_val=2, val_size=(32, 40),
                     train_size=(32, 32), seed=1)
    fake_test_tool.calls.clear()
    with pytest.raises(SystemExit, match=r'robustness.json: its cells were '
                       r'measured on something else.*data: .* then, .* now'
                       r'.*mv .*robustness.json .*robustness.json.old'):
        robustness.main(_with_levels(argv, 1, 2))
    assert fake_test_tool.calls == [] and open(results).read() == before
    make_toy_dataset(data, num_train=1, num_val=2, val_size=(32, 40),
                     train_size=(32, 32), seed=0)

    # other weights under the same name
    clip.write_bytes(b'another CLIP file')
    with pytest.raises(SystemExit, match='weights.model.pretrained: '):
        robustness.main(_with_levels(argv, 1, 2))
    # the same bytes written again (a new time): the same file, resumed
    clip.write_bytes(b'a CLIP file')
    result = robustness.main(_with_levels(argv, 1, 2))
    assert result['measured'] == 1 and len(fake_test_tool.calls) == 1


def test_a_results_file_of_an_earlier_version_is_refused_naming_it(
        robustness, fake_test_tool, small_sweep):
    """Format 1 recorded no data or file hashes: its cells cannot be
    checked, so they are not resumed."""
    argv, work_dir, _, _ = small_sweep
    os.makedirs(work_dir)
    path = osp.join(work_dir, 'robustness.json')
    with open(path, 'w') as f:
        json.dump(dict(version=1, settings=dict(config=TOY_CONFIG, tta=False),
                       cells=dict(clean=dict(metrics=METRICS, seconds=1.0))),
                  f)
    with pytest.raises(SystemExit, match=f'{path} was written by an earlier '
                       'tools/robustness.py, which did not record the data'):
        robustness.main(argv)
    assert fake_test_tool.calls == []


def test_the_metric_is_checked_before_anything_runs(
        robustness, fake_test_tool, small_sweep):
    argv, work_dir, _, _ = small_sweep
    robustness.main(argv)
    outputs = {ext: open(osp.join(work_dir, f'robustness.{ext}'), 'rb').read()
               for ext in ('json', 'md', 'png', 'csv')}
    fake_test_tool.calls.clear()
    with pytest.raises(SystemExit, match='--metric mDice: the test_evaluator '
                       'of .*denseclip_toy.py reports aAcc, mIoU, mAcc; '
                       'nothing was measured or written.*iou_metrics='
                       r'\[mIoU,mDice\]'):
        robustness.main(_with_levels(argv, 1, 2) + ['--metric', 'mDice'])
    with pytest.raises(SystemExit, match='Did you mean --metric mIoU'):
        robustness.main(['--metric', 'miou'] + argv)
    assert fake_test_tool.calls == []
    assert {ext: open(osp.join(work_dir, f'robustness.{ext}'), 'rb').read()
            for ext in outputs} == outputs
    # an evaluator whose names are known only from a run: checked after the
    # first, before any table is written
    other = str(osp.join(work_dir, 'other'))
    argv = argv[:argv.index('--work-dir') + 1] + [other] + argv[
        argv.index('--work-dir') + 2:] + ['test_evaluator.type=DumpResults',
                                          'test_evaluator.out_file_path=x.pkl']
    with pytest.raises(SystemExit, match='--metric mDice: the test run of '
                       'clean .* reports aAcc, mAcc, mIoU'):
        robustness.main(argv + ['--metric', 'mDice'])
    assert len(fake_test_tool.calls) == 1
    assert sorted(os.listdir(other)) == ['cells', 'robustness.json']


def test_outputs_are_replaced_only_by_complete_ones(
        robustness, fake_test_tool, small_sweep, monkeypatch):
    argv, work_dir, _, _ = small_sweep
    robustness.main(argv)
    names = ('robustness.csv', 'robustness.md', 'robustness.png')
    before = {n: open(osp.join(work_dir, n), 'rb').read() for n in names}

    def broken_plot(*args, **kwargs):
        raise RuntimeError('no plot today')

    monkeypatch.setattr(robustness, 'write_plot', broken_plot)
    with pytest.raises(RuntimeError, match='no plot today'):
        robustness.main(_with_levels(argv, 1, 2))
    assert {n: open(osp.join(work_dir, n), 'rb').read()
            for n in names} == before
    assert not [f for f in os.listdir(work_dir) if f.endswith('.part')]


@pytest.mark.parametrize('missing', ['config', 'checkpoint'])
def test_a_missing_config_or_checkpoint_is_named_and_leaves_no_work_dir(
        robustness, fake_test_tool, tmp_path, missing):
    work_dir = str(tmp_path / 'sweep')
    config = str(tmp_path / 'nope.py') if missing == 'config' else \
        TOY_CONFIG
    argv = [config, str(tmp_path / 'nope.pth'), '--work-dir', work_dir]
    with pytest.raises(SystemExit, match=f'{missing} .*nope.p.* does not '
                       'exist'):
        robustness.main(argv)
    assert not osp.exists(work_dir) and fake_test_tool.calls == []


def test_tta_results_are_kept_beside_those_without(
        robustness, fake_test_tool, small_sweep, capsys):
    argv, work_dir, _, _ = small_sweep
    robustness.main(argv)
    result = robustness.main(argv + ['--tta'])
    assert result['measured'] == 2  # not refused, not mixed: its own file
    assert all('--tta' in call for call in fake_test_tool.calls[2:])
    assert {'robustness.json', 'robustness_tta.json', 'robustness_tta.md',
            'robustness_tta.png', 'cells', 'cells_tta'} <= set(
                os.listdir(work_dir))
    with open(osp.join(work_dir, 'robustness_tta.json')) as f:
        assert json.load(f)['measured_on']['tta'] is True
    assert robustness.main(argv)['measured'] == 0  # each resumes its own
    with pytest.raises(SystemExit):
        robustness.parse_args(['-h'])
    help_text = ' '.join(capsys.readouterr().out.split())
    assert 'kept apart from the results without it, in ' \
        'robustness_tta.{json,csv,md,png} and cells_tta/' in help_text


def test_what_a_run_logs_before_its_runner_exists_goes_where_it_prints():
    """mmengine's default logger, made by the sweep while it reads the
    config and lists the data, keeps the stdout of that moment: a
    corrupted cell's first line (logged before its runner) went to the
    sweep's output, not to the cell's console.log."""
    import contextlib
    import io

    from mmengine.logging import MMLogger

    from denseclip.utils.console_logging import console_follows_stdout
    name = f'robustness_console_test_{os.getpid()}'
    logger = MMLogger.get_instance(name, log_level='INFO')
    try:
        console_follows_stdout(name)
        cell_console = io.StringIO()
        with contextlib.redirect_stdout(cell_console):
            logger.info('corruption gaussian_noise, level 2: ...')
        assert 'corruption gaussian_noise, level 2' in \
            cell_console.getvalue()
    finally:
        for handler in list(logger.handlers):
            handler.close()
            logger.removeHandler(handler)
