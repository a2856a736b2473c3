"""``--tta`` on the training-free and MaskCLIP configs: TrainingFreeTTAModel
averages each view's protocol probabilities with the flip undone, the
configs' views are their test resize's scales, and tools/test.py runs it."""
import glob
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmseg.registry import MODELS

from denseclip.apis import maskclip_model_cfg
from denseclip.models.heads import MaskClipHead
from denseclip.models.segmentors import TrainingFreeTTAModel
from denseclip.toy.clip_model import (TRAINED_VIT, build_openai_clip,
                                      write_clip_checkpoint)
from denseclip.toy.run_options import path_options
from denseclip_helpers import REPO, load_tool

NAMES = [['sky', 'cloud'], 'tree', 'road', 'red car']  # synonyms: protocol
SCALE = (96, 64)
FLIPS = {False: dict(type='RandomFlip', prob=0., direction='horizontal'),
         True: dict(type='RandomFlip', prob=1., direction='horizontal')}


@pytest.fixture
def naclip(vit_clip, tmp_path, monkeypatch, request):
    """NACLIP on the tiny ViT CLIP (slide windows), PAMR on or off; the
    head's scores the dense features' first channels (the random CLIP's
    text matches nothing: as test_test_tool_batch_size)."""
    monkeypatch.setattr(MaskClipHead, 'cls_seg',
                        lambda self, feat: feat[:, :self.num_queries])
    cfg = maskclip_model_cfg(
        vit_clip.jit, NAMES, method='naclip', pamr=request.param,
        inference='slide', templates='single',
        text_encoder=dict(transformer_heads=4),
        text_cache_dir=str(tmp_path / 'cache'))
    cfg.test_cfg.update(crop_size=(48, 48), stride=(32, 32))
    model = MODELS.build(cfg).eval()
    model.backbone.init_weights()
    model.decode_head.load_weights()
    return model


def _image(seed=0, shape=(40, 57)):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, shape + (3, ), dtype=np.uint8)


def _plain(model, image):
    """The segmentor alone: its labels and class probabilities at the
    image's size (class_chunk None: the protocol's full probabilities)."""
    pipeline = Compose([dict(type='LoadImageFromNDArray'),
                        dict(type='Resize', scale=SCALE, keep_ratio=True),
                        dict(type='PackSegInputs')])
    model.test_cfg.class_chunk = None
    with torch.no_grad():
        sample = model.test_step(pseudo_collate(
            [pipeline(dict(img=image.copy()))]))[0]
    return sample.pred_sem_seg.data[0], sample.seg_logits.data


def _tta(model, image, flips):
    pipeline = Compose([
        dict(type='LoadImageFromNDArray'),
        dict(type='TestTimeAug', transforms=[
            [dict(type='Resize', scale=SCALE, keep_ratio=True)],
            [FLIPS[f] for f in flips], [dict(type='PackSegInputs')]])])
    tta = TrainingFreeTTAModel(module=model)
    sample = tta.test_step(pseudo_collate([pipeline(dict(img=image))]))[0]
    return sample.pred_sem_seg.data[0], sample.seg_logits.data


@pytest.mark.parametrize('naclip', [None, True], indirect=True,
                         ids=['no_pamr', 'pamr'])
def test_flipped_view_is_unflipped_and_views_averaged(naclip):
    image = _image()
    labels, probs = _plain(naclip, image)
    flipped_labels, flipped_probs = _plain(naclip, image[:, ::-1])
    unflipped = flipped_probs.flip(-1)
    assert probs.shape == (len(NAMES), ) + image.shape[:2]
    # the image is not mirror-symmetric: the test would see a lost flip
    assert (unflipped - flipped_probs).abs().max() > 1e-2

    # the flipped view alone: the mirrored image's, mirrored (to float
    # rounding: softmax(40 * s) of scores resized before or after the flip)
    tta_labels, tta_probs = _tta(naclip, image, [True])
    torch.testing.assert_close(tta_probs, unflipped, atol=1e-3, rtol=0)
    assert (tta_labels == flipped_labels.flip(-1)).float().mean() > 0.999

    # both views: the mean of the two probabilities, its argmax
    tta_labels, tta_probs = _tta(naclip, image, [False, True])
    mean = (probs + unflipped) / 2
    torch.testing.assert_close(tta_probs, mean, atol=1e-3, rtol=0)
    assert (tta_labels == mean.argmax(0)).float().mean() > 0.999

    # one unflipped view: the segmentor's own labels
    tta_labels, _ = _tta(naclip, image, [False])
    assert torch.equal(tta_labels, labels)


def test_tta_model_refuses_another_segmentor(vit_clip):
    cfg = maskclip_model_cfg(vit_clip.jit, ['a', 'b'], method='maskclip',
                             templates='single',
                             text_encoder=dict(transformer_heads=4))
    cfg.type = 'EncoderDecoder'
    with pytest.raises(TypeError, match="SegTTAModel"):
        TrainingFreeTTAModel(module=cfg)


# ------------------------------------------------------------- configs
def _tta_configs():
    paths = glob.glob(osp.join(REPO, 'configs', 'maskclip', '*.py')) + \
        glob.glob(osp.join(REPO, 'configs', 'ovss', '*', '*.py')) + \
        glob.glob(osp.join(REPO, 'configs', 'toy', '*maskclip*.py'))
    return sorted(osp.relpath(p, REPO) for p in paths)


@pytest.mark.parametrize('config', _tta_configs())
def test_config_tests_its_own_resize_at_six_scales_and_flipped(config):
    cfg = Config.fromfile(osp.join(REPO, config))
    test_resize = [t for t in cfg.test_dataloader.dataset.pipeline
                   if t['type'] == 'Resize']
    resizes, flips, *_ = cfg.tta_pipeline[1]['transforms']
    scales = [tuple(t['scale']) for t in resizes]
    assert tuple(test_resize[0]['scale']) in scales, (scales, test_resize)
    long_side, short_side = test_resize[0]['scale']
    assert scales == [(int(long_side * r), int(short_side * r))
                      for r in (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)]
    assert [f['prob'] for f in flips] == [0., 1.]
    expected = ('TrainingFreeTTAModel'
                if cfg.model.type == 'TrainingFreeSegmentor'
                else 'SegTTAModel')
    assert cfg.tta_model.type == expected


# ---------------------------------------------------------- tools/test.py
@pytest.fixture(scope='module')
def toy_vit_clip_file(tmp_path_factory):
    """An untrained CLIP of the toy ViT configs' shape (TRAINED_VIT)."""
    path = tmp_path_factory.mktemp('toy_vit') / 'toy_ViT.pt'
    return write_clip_checkpoint(build_openai_clip(seed=3, **TRAINED_VIT),
                                 str(path))


@pytest.mark.slow
def test_tools_test_tta_on_a_toy_training_free_config(
        shared_toy_files, toy_vit_clip_file, tmp_path, capsys):
    """tools/test.py --tta on configs/toy/naclip_vit_toy.py (6 scales x 2
    flips, NACLIP's own inference per view) on 2 images: a valid mIoU beside
    the single-scale one (an untrained CLIP: the numbers say nothing of TTA's
    worth, only that it runs and is scored)."""
    test_tool = load_tool('test')
    config = osp.join(REPO, 'configs', 'toy', 'naclip_vit_toy.py')
    files = type(shared_toy_files)(toy_vit_clip_file,
                                   shared_toy_files.data_root, True)
    options = path_options(files, 'TrainingFreeSegmentor',
                           ('test_dataloader', )) + [
        'test_dataloader.dataset.indices=2',
        'test_dataloader.num_workers=0',
        'test_dataloader.persistent_workers=False']
    single = test_tool.main([config, '--work-dir', str(tmp_path / 'single'),
                             '--cfg-options', *options])
    tta = test_tool.main([config, '--tta', '--work-dir',
                          str(tmp_path / 'tta'), '--cfg-options', *options])
    print(f'naclip_vit_toy, untrained toy CLIP, 2 images: mIoU '
          f'{single["mIoU"]} single-scale, {tta["mIoU"]} --tta')
    for metrics in (single, tta):
        assert 0 <= metrics['mIoU'] <= 100
    dumped = glob.glob(str(tmp_path / 'tta' / '*' / 'vis_data' /
                           '*.py')) + glob.glob(str(tmp_path / 'tta' / '*.py'))
    assert dumped and "type='TrainingFreeTTAModel'" in open(dumped[0]).read()


def test_tta_on_a_config_without_it_names_the_config():
    test_tool = load_tool('test')
    config = osp.join(REPO, 'configs', 'maskclip_plus', 'web_image',
                      'maskclip_plus_vit16_deeplabv2_r50_512x512_300_'
                      'web_image.py')
    with pytest.raises(SystemExit) as exit_info:
        test_tool.main([config, 'none', '--tta'])
    assert str(exit_info.value).startswith(
        f'--tta: {config} defines no test-time augmentation')
