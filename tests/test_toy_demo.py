"""tools/toy_demo.py: the fast runs end to end (DenseCLIP, MaskCLIP, MaskCLIP+)."""
import os.path as osp
import re

import pytest
from conftest import copy_toy_files
from denseclip_helpers import load_tool

from denseclip.toy import files as toy_files


@pytest.fixture(scope='module')
def demo():
    return load_tool('toy_demo')


def test_a_run_needs_at_least_two_iterations(demo):
    with pytest.raises(SystemExit):
        demo.parse_args(['--iters', '1'])


@pytest.mark.slow
@pytest.mark.integration
def test_fast_demo_end_to_end(demo, shared_toy_files, tmp_path, capsys):
    """Toy CLIP + toy data, 4 training iterations through tools/train.py,
    slide test through tools/test.py: checkpoint, painted predictions and the
    mIoU line (no score bar: 4 iterations learn nothing)."""
    work_dir = str(tmp_path / 'toy')
    copy_toy_files(shared_toy_files, work_dir)  # written once per run
    result = demo.main(['--fast', '--work-dir', work_dir])
    out = capsys.readouterr().out

    assert result['checkpoint'] == osp.join(work_dir, 'train', 'iter_4.pth')
    assert osp.isfile(result['checkpoint'])
    metrics = result['metrics']
    assert set(metrics) >= {'mIoU', 'aAcc', 'mAcc'}
    assert 0 <= metrics['mIoU'] <= 100
    line = next(l for l in out.splitlines() if l.strip().startswith('mIoU ('))
    assert 'slide inference' in line and f'{metrics["mIoU"]:.2f}' in line
    # every validation image painted, as PNG, where the summary says
    assert len(result['painted']) == toy_files.DATA['num_val']
    assert all(p.endswith('.png') and osp.getsize(p) > 0
               for p in result['painted'])
    assert result['show_dir'] in out
    assert 'Iter(train) [4/4]' in out and 'Iter(test) [40/40]' in out
    # the test ran slide inference from the config
    dumped = open(osp.join(work_dir, 'test', 'denseclip_toy.py')).read()
    assert "mode='slide'" in dumped


@pytest.mark.slow
@pytest.mark.integration
def test_fast_maskclip_demo_tests_without_training(demo, shared_toy_files,
                                                   tmp_path, capsys):
    """MaskCLIP has nothing to train: the demo tests the config through
    tools/test.py without a checkpoint, on the trained toy CLIP."""
    work_dir = str(tmp_path / 'toy')
    copy_toy_files(shared_toy_files, work_dir)  # written once per run
    config = osp.join(demo.REPO, 'configs', 'toy', 'maskclip_toy.py')
    result = demo.main(['--fast', '--work-dir', work_dir, '--config', config])
    out = capsys.readouterr().out
    assert result['checkpoint'] is None
    assert not osp.exists(osp.join(work_dir, 'train'))
    assert result['clip_file'] == osp.join(work_dir, 'clip',
                                           'toy_RN_trained.pt')
    assert {'mIoU', 'aAcc', 'mAcc'} <= set(result['metrics'])
    assert 'MaskClipHead toy demo (no training: annotation-free)' in out
    assert '[2/2] testing with the frozen CLIP weights' in out
    assert 'tools/train.py' not in out
    assert re.search(r'loaded \d+ tensors from .*toy_RN_trained\.pt '
                     r"\(OpenAI's layout\) into CLIPResNet", out)
    assert len(result['painted']) == toy_files.DATA['num_val']
    line = next(l for l in out.splitlines() if l.strip().startswith('mIoU ('))
    assert 'seed 0' in line and f'{result["metrics"]["mIoU"]:.2f}' in line


@pytest.mark.slow
@pytest.mark.integration
def test_fast_maskclip_plus_demo_end_to_end(demo, shared_toy_files, tmp_path,
                                            capsys):
    """The same toy files train MaskCLIP+ (teacher: MaskCLIP on the trained
    toy CLIP) for 4 iterations and test it: the whole annotation-free path
    on a CPU."""
    work_dir = str(tmp_path / 'toy')
    copy_toy_files(shared_toy_files, work_dir)  # written once per run
    config = osp.join(demo.REPO, 'configs', 'toy', 'maskclip_plus_toy.py')
    result = demo.main(['--fast', '--work-dir', work_dir, '--config', config])
    out = capsys.readouterr().out
    assert osp.isfile(result['checkpoint'])
    assert {'mIoU', 'aAcc', 'mAcc'} <= set(result['metrics'])
    assert 'MaskClipPlus toy demo' in out and 'whole inference' in out
    # the teacher's image tower read the toy CLIP file the demo pointed it at
    assert re.search(r'loaded \d+ tensors from .*toy_RN_trained\.pt '
                     r"\(OpenAI's layout\) into CLIPResNet", out)
    dumped = open(osp.join(work_dir, 'train', 'maskclip_plus_toy.py')).read()
    assert osp.join(work_dir, 'clip', 'toy_RN_trained.pt') in dumped

