"""tools/toy_demo.py: toy files written once and reused; the fast run end to end."""
import dataclasses
import json
import os
import os.path as osp
import re

import pytest
from denseclip_helpers import load_tool


@pytest.fixture(scope='module')
def demo():
    return load_tool('toy_demo')


def test_toy_files_are_written_once_and_reused(demo, tmp_path):
    work_dir = str(tmp_path / 'toy')
    first = demo.prepare_toy_files(work_dir)
    assert first.reused is False
    clip_mtime = os.stat(first.clip_file).st_mtime_ns
    val_dir = osp.join(first.data_root, 'images', 'validation')
    images = sorted(os.listdir(val_dir))
    assert len(images) == demo.DATA['num_val']
    assert images[0] == 'ADE_val_00000001.jpg'  # ADE20K's own naming
    again = demo.prepare_toy_files(work_dir)
    assert again == dataclasses.replace(first, reused=True)
    assert os.stat(first.clip_file).st_mtime_ns == clip_mtime

    # other settings in the manifest: everything written anew, stale files
    # of the old dataset gone
    stale = osp.join(val_dir, 'ADE_val_99999999.jpg')
    open(stale, 'w').close()
    manifest = osp.join(work_dir, 'toy_files.json')
    with open(manifest) as f:
        recorded = json.load(f)
    recorded['data']['num_val'] = 3
    with open(manifest, 'w') as f:
        json.dump(recorded, f)
    assert demo.prepare_toy_files(work_dir).reused is False
    assert not osp.exists(stale)
    assert len(os.listdir(val_dir)) == demo.DATA['num_val']
    # a lost file: written anew
    os.remove(first.clip_file)
    assert demo.prepare_toy_files(work_dir).reused is False
    assert osp.isfile(first.clip_file)


def test_a_dataset_folder_not_written_by_the_demo_is_left_alone(demo,
                                                                tmp_path):
    data_root = tmp_path / 'toy' / 'ade' / 'ADEChallengeData2016'
    (data_root / 'images').mkdir(parents=True)
    mine = data_root / 'images' / 'ADE_train_00000001.jpg'
    mine.write_bytes(b'user data')
    with pytest.raises(SystemExit, match='not written by the toy demo'):
        demo.prepare_toy_files(str(tmp_path / 'toy'))
    assert mine.read_bytes() == b'user data'


def test_schedule_options_keep_warmup_inside_the_run(demo):
    opts = dict(o.split('=') for o in demo.schedule_options(4))
    assert opts['train_cfg.max_iters'] == '4'
    assert int(opts['param_scheduler.0.end']) < int(
        opts['param_scheduler.1.end']) == 4
    with pytest.raises(SystemExit):
        demo.parse_args(['--iters', '1'])


def test_fast_demo_end_to_end(demo, tmp_path, capsys):
    """Toy CLIP + toy data, 4 training iterations through tools/train.py,
    slide test through tools/test.py: checkpoint, painted predictions and the
    mIoU line (no score bar: 4 iterations learn nothing)."""
    work_dir = str(tmp_path / 'toy')
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
    assert len(result['painted']) == demo.DATA['num_val']
    assert all(p.endswith('.png') and osp.getsize(p) > 0
               for p in result['painted'])
    assert result['show_dir'] in out
    assert 'Iter(train) [4/4]' in out and 'Iter(test) [40/40]' in out
    # the test ran slide inference from the config
    dumped = open(osp.join(work_dir, 'test', 'denseclip_toy.py')).read()
    assert "mode='slide'" in dumped


def test_fast_maskclip_plus_demo_end_to_end(demo, tmp_path, capsys):
    """The same toy files train MaskCLIP+ (teacher: MaskCLIP on the toy CLIP)
    for 4 iterations and test it: the whole annotation-free path on a CPU."""
    work_dir = str(tmp_path / 'toy')
    config = osp.join(demo.REPO, 'configs', 'toy', 'maskclip_plus_toy.py')
    result = demo.main(['--fast', '--work-dir', work_dir, '--config', config])
    out = capsys.readouterr().out
    assert osp.isfile(result['checkpoint'])
    assert 0 <= result['metrics']['mIoU'] <= 100
    assert 'MaskClipPlus toy demo' in out and 'whole inference' in out
    # the teacher's image tower read the toy CLIP file the demo pointed it at
    assert re.search(r'loaded \d+ tensors from .*toy_RN\.pt into CLIPResNet',
                     out)
    dumped = open(osp.join(work_dir, 'train', 'maskclip_plus_toy.py')).read()
    assert osp.join(work_dir, 'clip', 'toy_RN.pt') in dumped
