"""Shared fixtures: tiny CLIP checkpoints in OpenAI's formats, and the toy
demo's files (toy CLIP + toy ADE20K-layout dataset) written once per run."""
import os
import shutil

import pytest
import torch
from mmengine.config import ConfigDict

import denseclip  # noqa: F401  (registers the modules)
from mmseg.utils import register_all_modules
from denseclip.toy.clip_model import (TOY_RESNET, TOY_VIT, build_openai_clip,
                                      write_clip_checkpoint)
from denseclip.toy.files import ToyFiles, prepare_toy_files


def _threads_per_process() -> int:
    """2 torch threads, or under pytest-xdist the cores shared among its
    workers (at least 1): two workers of 2 threads each on 2 cores spent
    more than twice the CPU time of a serial run, spinning."""
    workers = int(os.environ.get('PYTEST_XDIST_WORKER_COUNT', '1'))
    return max(1, min(2, (os.cpu_count() or 2) // max(workers, 1)))


THREADS = _threads_per_process()
torch.set_num_threads(THREADS)
if 'PYTEST_XDIST_WORKER' in os.environ:
    # tools the tests start in a fresh interpreter get the same share
    os.environ['OMP_NUM_THREADS'] = str(THREADS)

register_all_modules(init_default_scope=True)  # default scope 'mmseg'


class ClipFiles:
    """A tiny OpenAI CLIP model and the files written from it."""

    def __init__(self, model, jit_path, sd_path, shape):
        self.model = model
        self.jit = str(jit_path)
        self.state_dict = str(sd_path)
        self.shape = shape


def _make(tmp_path_factory, name, shape, seed):
    folder = tmp_path_factory.mktemp(name)
    model = build_openai_clip(seed=seed, **shape)
    jit_path = write_clip_checkpoint(model, str(folder / f'{name}.pt'))
    sd_path = write_clip_checkpoint(
        model, str(folder / f'{name}_sd.pth'), torchscript=False)
    return ClipFiles(model, jit_path, sd_path, shape)


@pytest.fixture(scope='session')
def rn_clip(tmp_path_factory):
    """Toy ResNet CLIP (layers (1,1,1,1), width 8, embed 64, 64px)."""
    return _make(tmp_path_factory, 'toy_rn', TOY_RESNET, seed=0)


@pytest.fixture(scope='session')
def vit_clip(tmp_path_factory):
    """Toy ViT CLIP (patch 16, width 64, 2 layers, embed 32, 64px)."""
    return _make(tmp_path_factory, 'toy_vit', TOY_VIT, seed=1)


@pytest.fixture(scope='session')
def tiny_vfm(tmp_path_factory):
    """A random DINO-shaped VFM file (patch 8, width 32, 2 blocks), the
    vision foundation model of ProxyCLIP's tests."""
    from vfm_helpers import write_tiny_dino
    return write_tiny_dino(str(tmp_path_factory.mktemp('vfm') /
                               'tiny_dino.pth'))


def _tree(root):
    """{relative path: (size, mtime)} of every file under ``root``."""
    found = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            stat = os.stat(path)
            found[os.path.relpath(path, root)] = (stat.st_size,
                                                  stat.st_mtime_ns)
    return found


@pytest.fixture(scope='session')
def shared_toy_files(tmp_path_factory) -> ToyFiles:
    """The toy demo's files, written once for the whole run by
    ``prepare_toy_files``: the random-weight toy CLIP and the toy
    ADE20K-layout dataset (``denseclip.toy.files.DATA``). Read them, never
    write into them (checked at the end of the run); a test that changes
    them works on :func:`copy_toy_files`."""
    work_dir = tmp_path_factory.mktemp('toy_files')
    files = prepare_toy_files(str(work_dir))
    before = _tree(work_dir)
    yield files
    after = _tree(work_dir)
    changed = sorted(k for k in before.keys() | after.keys()
                     if before.get(k) != after.get(k))
    assert not changed, ('a test wrote into the shared toy files: '
                         f'{changed[:5]}')


def copy_toy_files(files: ToyFiles, work_dir) -> ToyFiles:
    """A copy of the shared toy files in ``work_dir``, laid out as
    ``prepare_toy_files`` writes them (which reuses them there)."""
    shutil.copytree(os.path.dirname(os.path.dirname(files.clip_file)),
                    str(work_dir))
    copied = prepare_toy_files(str(work_dir))
    assert copied.reused, 'the copy of the toy files was not reused'
    return copied


def rn_backbone_cfg(shape, **overrides):
    """Backbone config matching a toy ResNet CLIP shape."""
    cfg = dict(type='CLIPResNetWithAttention',
               layers=list(shape['vision_layers']),
               output_dim=shape['embed_dim'],
               input_resolution=shape['image_resolution'],
               width=shape['vision_width'])
    cfg.update(overrides)
    return cfg


def vit_backbone_cfg(shape, **overrides):
    """Backbone config matching a toy ViT CLIP shape."""
    cfg = dict(type='CLIPVisionTransformer',
               input_resolution=shape['image_resolution'],
               patch_size=shape['vision_patch_size'],
               width=shape['vision_width'],
               layers=shape['vision_layers'],
               heads=max(shape['vision_width'] // 64, 1),
               output_dim=shape['embed_dim'],
               out_indices=[0, 0, 1, 1],
               get_embeddings=True)
    cfg.update(overrides)
    return cfg


def text_cfg(shape, type='CLIPTextTower', **overrides):
    """Text tower config matching a toy CLIP shape."""
    cfg = dict(type=type,
               context_length=shape['context_length'],
               transformer_width=shape['transformer_width'],
               transformer_heads=shape['transformer_heads'],
               transformer_layers=shape['transformer_layers'],
               embed_dim=shape['embed_dim'])
    cfg.update(overrides)
    return cfg


TOY_CLASS_NAMES = ['sky', 'tree', 'road', 'red car']


def tiny_denseclip_cfg(shape, pretrained=None, num_classes=4, **overrides):
    """A small DenseCLIP on the toy ResNet CLIP shape, for unit tests."""
    width = shape['vision_width']
    stages = [width * 4 * 2**i for i in range(4)]
    norm_cfg = dict(type='BN', requires_grad=True)
    cfg = dict(
        type='DenseCLIP',
        pretrained=pretrained,
        class_names=TOY_CLASS_NAMES[:num_classes],
        context_length=5,
        token_embed_dim=shape['transformer_width'],
        text_dim=shape['embed_dim'],
        data_preprocessor=dict(
            type='SegDataPreProcessor',
            mean=[122.7709, 116.7460, 104.0937],
            std=[68.5005, 66.6322, 70.3232],
            bgr_to_rgb=True, pad_val=0, seg_pad_val=255),
        backbone=rn_backbone_cfg(shape),
        text_encoder=text_cfg(shape, type='CLIPTextContextEncoder',
                              context_length=13),
        context_decoder=dict(type='ContextDecoder', transformer_width=16,
                             transformer_heads=2, transformer_layers=1,
                             visual_dim=shape['embed_dim'], dropout=0.1),
        neck=dict(type='FPN', in_channels=stages[:3] + [stages[3] + num_classes],
                  out_channels=16, num_outs=4),
        decode_head=dict(type='FPNHead', in_channels=[16] * 4,
                         in_index=[0, 1, 2, 3], feature_strides=[4, 8, 16, 32],
                         channels=16, dropout_ratio=0.1,
                         num_classes=num_classes, norm_cfg=norm_cfg,
                         align_corners=False,
                         loss_decode=dict(type='CrossEntropyLoss',
                                          use_sigmoid=False, loss_weight=1.0)),
        identity_head=dict(type='IdentityHead', num_classes=num_classes,
                           loss_decode=dict(type='CrossEntropyLoss',
                                            use_sigmoid=False,
                                            loss_weight=0.4)),
        train_cfg=dict(),
        test_cfg=dict(mode='whole'))
    cfg.update(overrides)
    return ConfigDict(cfg)


@pytest.fixture(scope='module')
def mixed_root(tmp_path_factory):
    """An ADE20K-layout folder of 7 images of 3 sizes
    (tests/mixed_size_data.py)."""
    from mixed_size_data import write_mixed_size_ade
    root = str(tmp_path_factory.mktemp('mixed_ade'))
    write_mixed_size_ade(root)
    return root


_terminal = {}  # pytest's terminal reporter, once configured


def pytest_configure(config):
    _terminal['reporter'] = config.pluginmanager.get_plugin(
        'terminalreporter')


def pytest_runtest_logreport(report):
    """Name a failing test the moment it fails, not only in the summary at
    the end: a run stopped by a time limit (the GPU machine's calls) still
    says which tests failed. Under pytest-xdist this runs in the main
    process, which receives every worker's reports."""
    if not report.failed:
        return
    line = f'FAILED {report.nodeid} ({report.when})'
    reporter = _terminal.get('reporter')
    if reporter is None:
        print(f'\n{line}', flush=True)
        return
    reporter.ensure_newline()
    reporter.write_line(line, red=True)
