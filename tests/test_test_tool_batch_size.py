"""tools/test.py --batch-size N on a toy split whose images have three sizes:
the same predictions (in the same order) and metrics as batch size 1 for
DenseCLIP with slide inference, a training-free segmentor with whole-image
inference and PAMR, and with --tta; tools/dist_test.sh passes the option
on."""
import os
import os.path as osp
import re
import subprocess

import pytest
from denseclip_helpers import (REPO, TOY_CONFIG, load_tool,
                               mmseg0x_checkpoint, released_state_dict)
from mixed_size_data import MIXED_SIZES, Recorder, assert_same_predictions
from mmengine.config import Config

from denseclip.clip.checkpoint import load_clip_checkpoint
from denseclip.toy.data import TOY_CLASSES


@pytest.fixture(scope='module')
def tools_test():
    return load_tool('test')


@pytest.fixture(scope='module')
def toy_checkpoint(shared_toy_files, tmp_path_factory):
    """Every weight of the toy DenseCLIP (reference layout, seeded)."""
    cfg = Config.fromfile(TOY_CONFIG)
    state = released_state_dict(
        cfg.model, load_clip_checkpoint(shared_toy_files.clip_file))
    return mmseg0x_checkpoint(
        state, cfg.metainfo.classes, cfg.metainfo.palette,
        str(tmp_path_factory.mktemp('ckpt') / 'denseclip_toy.pth'))


def loader_options(root):
    return [f'test_dataloader.dataset.data_root={root}',
            'test_dataloader.num_workers=0',
            'test_dataloader.persistent_workers=False',
            'default_hooks.logger.interval=1']


def run_batches(tools_test, args, options, work_dir, capsys, recorder,
                sizes=(1, 3)):
    """tools/test.py ARGS --batch-size N for each N: {N: (metrics,
    predictions, printed output)}."""
    results = {}
    for n in sizes:
        capsys.readouterr()
        metrics = tools_test.main(
            args + ['--batch-size', str(n), '--work-dir',
                    str(work_dir / f'b{n}'), '--cfg-options'] + options)
        out = capsys.readouterr()
        results[n] = metrics, recorder.take(), out.out + out.err
    return results


def loop_of(work_dir, config_name):
    """The test loop type in the config the run dumped."""
    dumped = Config.fromfile(osp.join(work_dir, config_name))
    return dumped.test_cfg.type


@pytest.mark.slow
def test_denseclip_slide_batches_equal_batch_size_1(
        shared_toy_files, toy_checkpoint, mixed_root, tools_test, tmp_path,
        capsys, monkeypatch):
    """The toy DenseCLIP, slide inference (128 windows every 85): batches of
    3 images of sizes [A B A] [A C B] [A] after the resize."""
    recorder = Recorder(monkeypatch)
    options = [f'model.pretrained={shared_toy_files.clip_file}'] + \
        loader_options(mixed_root)
    results = run_batches(tools_test, [TOY_CONFIG, toy_checkpoint], options,
                          tmp_path, capsys, recorder)
    (m1, p1, out1), (m3, p3, out3) = results[1], results[3]
    assert m1 == m3 and 0 < m1['mIoU'] <= 100
    assert_same_predictions(p1, p3)
    assert [labels.shape for _, labels, _ in p3] == [
        (1, *size) for size in MIXED_SIZES]  # the loader's order
    # progress as mmseg prints it: one line per loader batch
    assert 'Iter(test) [7/7]' in out1 and 'Iter(test) [3/3]' in out3
    assert 'Iter(test) [4/' not in out3
    assert ('SizeGroupedTestLoop: 7 images in 3 loader batches of up to 3, '
            '6 test_step calls') in out3
    assert loop_of(tmp_path / 'b1', 'denseclip_toy.py') == 'TestLoop'
    assert loop_of(tmp_path / 'b3', 'denseclip_toy.py') == \
        'SizeGroupedTestLoop'


@pytest.mark.slow
def test_training_free_whole_batches_equal_batch_size_1(
        vit_clip, mixed_root, tools_test, tmp_path, capsys, monkeypatch):
    """NACLIP on the toy ViT CLIP with whole-image inference, PAMR and a
    background threshold (per image, after the batched forward); batches
    of 3, and of 2: [A B] [A A] [C B] [A]."""
    from denseclip.apis import maskclip_model_cfg
    from denseclip.models.heads import MaskClipHead

    # the random toy CLIP's text matches nothing: logits from the dense
    # features alone vary over the image (as test_training_free_segmentor)
    monkeypatch.setattr(MaskClipHead, 'cls_seg',
                        lambda self, feat: feat[:, :self.num_classes])
    recorder = Recorder(monkeypatch)
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'toy',
                                   'maskclip_vit_toy.py'))
    cfg.model = maskclip_model_cfg(
        vit_clip.jit, list(TOY_CLASSES), method='naclip', pamr=True,
        prob_thd=0.21, inference='whole', templates='single',
        text_encoder=dict(
            transformer_heads=vit_clip.shape['transformer_heads']),
        text_cache_dir=str(tmp_path / 'cache'))
    cfg.test_dataloader.dataset.pipeline[1].scale = (512, 128)
    config = str(tmp_path / 'naclip_toy_mixed.py')
    cfg.dump(config)
    results = run_batches(tools_test, [config], loader_options(mixed_root),
                          tmp_path, capsys, recorder, sizes=(1, 3, 2))
    assert loop_of(tmp_path / 'b3', 'naclip_toy_mixed.py') == \
        'SizeGroupedTestLoop'
    for n in (3, 2):
        assert results[n][0] == results[1][0]
        assert_same_predictions(results[1][1], results[n][1])
    assert 'Iter(test) [4/4]' in results[2][2]
    assert '6 test_step calls' in results[3][2]
    assert '7 images in 4 loader batches of up to 2, 6 test_step calls' in \
        results[2][2]


@pytest.mark.slow
def test_tta_batches_equal_batch_size_1(shared_toy_files, toy_checkpoint,
                                        mixed_root, tools_test, tmp_path,
                                        capsys, monkeypatch):
    """--tta (6 scales x flip, SegTTAModel): images are grouped when all
    their views match in size; 4 images [A B A] [A]."""
    recorder = Recorder(monkeypatch)
    options = [f'model.pretrained={shared_toy_files.clip_file}',
               'test_dataloader.dataset.indices=4'] + \
        loader_options(mixed_root)
    results = run_batches(tools_test, [TOY_CONFIG, toy_checkpoint, '--tta'],
                          options, tmp_path, capsys, recorder)
    assert results[1][0] == results[3][0]
    assert_same_predictions(results[1][1], results[3][1])
    assert 'Iter(test) [2/2]' in results[3][2]
    assert '4 images in 2 loader batches of up to 3, 3 test_step calls' in \
        results[3][2]
    dumped = Config.fromfile(osp.join(tmp_path, 'b3', 'denseclip_toy.py'))
    assert dumped.model.type == 'SegTTAModel'
    assert dumped.test_cfg.type == 'SizeGroupedTestLoop'


@pytest.mark.parametrize('value', ['0', '-2', 'two'])
def test_a_batch_size_below_1_is_refused(tools_test, value, capsys):
    with pytest.raises(SystemExit):
        tools_test.parse_args([TOY_CONFIG, '--batch-size', value])
    assert '--batch-size' in capsys.readouterr().err


def test_batch_size_is_optional(tools_test):
    assert tools_test.parse_args([TOY_CONFIG]).batch_size is None
    assert tools_test.parse_args([TOY_CONFIG, '--batch-size', '8']
                                 ).batch_size == 8


@pytest.mark.integration
def test_dist_test_passes_batch_size_to_the_tool(tmp_path):
    """tools/dist_test.sh hands its extra arguments to tools/test.py: a
    stand-in PYTHON records the command line torchrun would get."""
    record = tmp_path / 'argv.txt'
    fake = tmp_path / 'python'
    fake.write_text('#!/usr/bin/env bash\n'
                    '[ "$1" = -c ] && exit 0\n'  # find_python.sh's probe
                    f'printf "%s\\n" "$@" > {record}\n')
    fake.chmod(0o755)
    env = dict(os.environ, PYTHON=str(fake))
    proc = subprocess.run(
        ['bash', 'tools/dist_test.sh', TOY_CONFIG, 'ckpt.pth', '2',
         '--batch-size', '4', '--tta'], cwd=REPO, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        timeout=60)
    assert proc.returncode == 0, proc.stdout
    argv = record.read_text().split('\n')
    tool = argv.index(osp.join(REPO, 'tools', 'test.py'))
    assert argv[tool + 1:tool + 8] == [TOY_CONFIG, 'ckpt.pth', '--launcher',
                                       'pytorch', '--batch-size', '4',
                                       '--tta']
    assert re.search(r'--nproc_per_node=2', '\n'.join(argv))


def test_batch_size_without_a_test_dataloader_is_named(tools_test, tmp_path):
    config = str(tmp_path / 'no_test_loader.py')
    Config(dict(model=dict(type='EncoderDecoder'))).dump(config)
    with pytest.raises(SystemExit, match='--batch-size: .*no_test_loader.py '
                       'has no test_dataloader'):
        tools_test.main([config, '--batch-size', '2', '--work-dir',
                         str(tmp_path / 'work')])
