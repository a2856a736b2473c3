"""tools/test.py stops on a checkpoint that leaves any of the model's tensors
at its initial value outside the parts built fresh by design
(CheckpointFitHook), naming the file, the config, the modules left out with
their counts and some keys; --allow-partial-checkpoint keeps testing. The model's own
checkpoints (mmengine's, mmseg 0.x's with ``module.`` prefixes) test as
before. Released DenseCLIP files, --tta and a MaskCLIP+ student checkpoint
go through the same check in test_denseclip_tools.py and
test_toy_clip_training.py."""
import logging
import os.path as osp
import re
import sys

import pytest
import torch
from mmengine.runner import Runner
from mmseg.registry import MODELS
from tiny_runner import runner_cfg, write_dataset

from denseclip.engine import checkpoint_fit, setup_train_run
from denseclip.engine.checkpoint_fit import module_groups
from denseclip_helpers import load_tool

test_tool = load_tool('test')


@pytest.fixture
def fit_log(monkeypatch):
    """What CheckpointFitHook logs, with levels. (Read from the hook, not
    from stdout: two runs started within the same second share mmengine's
    logger, whose handler still writes to the first test's stream.)"""
    module = sys.modules['denseclip.engine.checkpoint_fit']
    lines = []
    monkeypatch.setattr(
        module, 'print_log', lambda msg, logger=None, level=20:
        lines.append((level, msg)))
    return lines


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    """The tiny dataset, its config file, and a checkpoint that the runner
    wrote after 2 iterations."""
    folder = tmp_path_factory.mktemp('fit')
    root = str(folder / 'data')
    write_dataset(root)
    cfg = runner_cfg(root, str(folder / 'train'), 'fit', max_iters=2)
    setup_train_run(cfg, 'none', False)
    Runner.from_cfg(cfg).train()
    config = str(folder / 'tiny.py')
    runner_cfg(root, str(folder / 'work'), 'fit').dump(config)
    return config, str(folder / 'train' / 'iter_2.pth')


def foreign_checkpoint(path, kind):
    """A file of another model: other names, or the same names with other
    widths (the tiny model with 16 channels instead of 8)."""
    if kind == 'other names':
        state = {'encoder.conv0.weight': torch.zeros(4, 3, 3, 3),
                 'encoder.conv0.bias': torch.zeros(4),
                 'classifier.weight': torch.zeros(2, 4)}
    else:
        cfg = runner_cfg('x', 'w', 'x').model
        cfg.backbone.update(stem_channels=16, base_channels=16)
        cfg.decode_head.update(in_channels=16, channels=16)
        state = MODELS.build(cfg).state_dict()
    torch.save({'meta': {}, 'state_dict': state}, path)
    return path


@pytest.mark.parametrize('kind, found, detail', [
    ('other names', 0, r'Left at their initial values: backbone\.stem\.0-1,3-4,6-7: '
     r'18 tensors; backbone\.layer1\.0-1: 24 tensors; decode_head\.'
     r'.*\. Unexpected keys \(3\): encoder\.conv0\.weight, '
     r'encoder\.conv0\.bias, classifier\.weight\.'),
    ('other widths', r'\d+', r'Keys of another shape \(\d+\): '
     r'backbone\.stem\.0\.weight \(file \[8, 3, 3, 3\], model '
     r'\[4, 3, 3, 3\]\), '),
])
def test_a_checkpoint_of_another_model_stops_the_test(tiny, tmp_path, kind,
                                                      found, detail):
    """mmengine warned about missing keys and the test reported an mIoU
    of random weights with exit status 0."""
    config, _ = tiny
    path = foreign_checkpoint(str(tmp_path / 'other.pth'), kind)
    with pytest.raises(SystemExit) as info:
        test_tool.main([config, path, '--work-dir', str(tmp_path / 'w')])
    message = str(info.value.code)  # a string: exit status 1
    assert re.match(rf'checkpoint {re.escape(path)} supplies {found} of the '
                    r'\d+ tensors \(parameters and buffers\) of the model '
                    rf'of {re.escape(config)} with their names and shapes\. '
                    r'Left at their initial values: ', message), message
    assert re.search(detail, message), message
    assert message.endswith('pass --allow-partial-checkpoint '
                            '(CheckpointFitHook(allow_partial=True))')
    assert not osp.exists(tmp_path / 'w' / 'fit')  # no metrics written


def test_allow_partial_checkpoint_tests_anyway(tiny, tmp_path, fit_log):
    config, _ = tiny
    path = foreign_checkpoint(str(tmp_path / 'other.pth'), 'other names')
    metrics = test_tool.main([config, path, '--allow-partial-checkpoint',
                              '--work-dir', str(tmp_path / 'w')])
    assert 0 <= metrics['mIoU'] <= 100
    [(level, message)] = fit_log
    assert level == logging.WARNING
    assert re.fullmatch(rf'checkpoint {re.escape(path)} supplies 0 of '
                        r'the \d+ tensors .*; testing anyway '
                        r'\(--allow-partial-checkpoint\)', message)


@pytest.mark.parametrize('layout', ['mmengine', 'mmseg 0.x, module.'])
def test_the_models_own_checkpoint_tests(tiny, tmp_path, layout, fit_log):
    config, trained = tiny
    path = trained
    if layout != 'mmengine':  # a DataParallel-trained mmseg 0.x file
        state = torch.load(trained, map_location='cpu',
                           weights_only=False)['state_dict']
        path = str(tmp_path / 'old.pth')
        torch.save({'meta': {'CLASSES': ('a', 'b')}, 'optimizer': {},
                    'state_dict': {'module.' + k: v
                                   for k, v in state.items()}}, path)
    metrics = test_tool.main([config, path, '--work-dir', str(tmp_path / 'w'),
                              '--cfg-options', 'log_level=INFO'])
    assert 0 <= metrics['mIoU'] <= 100
    total = len(MODELS.build(runner_cfg('x', 'w', 'x').model).state_dict())
    assert fit_log == [(logging.INFO,
                        f"{path} supplies {total} of the model's {total} "
                        'tensors')]


def drop_block(state, prefix):
    """``state`` without the tensors of module ``prefix``."""
    return {k: v for k, v in state.items() if not k.startswith(prefix + '.')}


def test_a_file_missing_a_block_stops_the_test(tiny, tmp_path):
    """Half of the model supplied was enough before: the block was tested
    with its random initial weights after a warning."""
    config, trained = tiny
    state = torch.load(trained, map_location='cpu',
                       weights_only=False)['state_dict']
    path = str(tmp_path / 'partial.pth')
    torch.save({'meta': {}, 'state_dict': drop_block(state,
                                                     'backbone.layer1.1')},
               path)
    with pytest.raises(SystemExit) as info:
        test_tool.main([config, path, '--work-dir', str(tmp_path / 'w')])
    message = str(info.value.code)
    # a BasicBlock: 2 convolutions, 2 batch norms of 5 tensors each
    total = len(state)
    assert f'supplies {total - 12} of the {total} tensors' in message
    assert re.search(r'\. Left at their initial values: backbone\.layer1\.1: '
                     r'12 tensors\. Is it a checkpoint of this config', message)
    assert 'Unexpected' not in message and 'another shape' not in message


def test_a_file_missing_a_block_tests_with_allow_partial(tiny, tmp_path,
                                                        fit_log):
    config, trained = tiny
    state = torch.load(trained, map_location='cpu',
                       weights_only=False)['state_dict']
    path = str(tmp_path / 'partial.pth')
    torch.save({'state_dict': drop_block(state, 'backbone.layer1.1')}, path)
    metrics = test_tool.main([config, path, '--allow-partial-checkpoint',
                              '--work-dir', str(tmp_path / 'w')])
    assert 0 <= metrics['mIoU'] <= 100
    [(level, message)] = fit_log
    assert level == logging.WARNING
    assert 'Left at their initial values: backbone.layer1.1: 12 tensors' \
        in message


def test_every_tensor_outside_the_fresh_parts_must_fit():
    """The rule: every tensor of the model with its name and shape, except
    those built fresh by design (here num_batches_tracked);
    ``checkpoint_fit`` reads a state dict as mmengine loads it."""
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Linear(3, 4),
                                torch.nn.BatchNorm1d(4))
    own = model.state_dict()  # 2 + 2 + 5 tensors
    keys = list(own)
    fit = checkpoint_fit(model, {'state_dict': dict(own), 'meta': {}})
    assert (fit.total, fit.found, fit.fits) == (9, 9, True)
    no_counter = {k: v for k, v in own.items()
                  if k != '2.num_batches_tracked'}
    fit = checkpoint_fit(model, {'state_dict': no_counter})
    assert (fit.found, fit.fits, fit.missing, fit.fresh) == (
        8, True, ['2.num_batches_tracked'], ['2.num_batches_tracked'])
    most = {k: own[k] for k in keys if k != '1.bias'}
    fit = checkpoint_fit(model, {'state_dict': most})
    assert (fit.found, fit.fits, fit.left_at_init) == (8, False, ['1.bias'])
    assert fit.groups() == [('1', 1)]
    other = dict(own, **{keys[0]: torch.zeros(7)})  # 8 fit, 1 other shape
    fit = checkpoint_fit(model, {'module.' + k: v for k, v in other.items()})
    assert (fit.found, fit.fits) == (8, False)
    assert fit.mismatched == [(keys[0], (7, ), (3, 2))]
    assert fit.left_at_init == [keys[0]]


def test_module_groups_collapse_numbered_runs():
    keys = ([f'backbone.layer3.{i}.conv{j}.weight' for i in range(6, 23)
             for j in (1, 2)] + ['backbone.layer3.25.conv1.weight',
                                 'decode_head.conv_seg.weight',
                                 'decode_head.conv_seg.bias', 'gamma'])
    assert module_groups(keys) == [('backbone.layer3.6-22,25', 35),
                                   ('decode_head.conv_seg', 2), ('gamma', 1)]
