"""TrainingFreeSegmentor: mmseg's labels, exactly, from class chunks that never
hold every class's logits at the image's size."""
import copy

import pytest
import torch
from maskclip_helpers import toy_maskclip_cfg
from mmengine.config import ConfigDict
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from torch.utils._python_dispatch import TorchDispatchMode

from denseclip.engine.compiled_inference import compile_for_inference
from denseclip.models.segmentors import TrainingFreeSegmentor

NAMES = [f'class {i}' for i in range(7)]


def pair(clip, tmp_path, logits=None, **test_cfg):
    """The same MaskCLIP as ``TrainingFreeSegmentor`` and as mmseg's
    ``EncoderDecoder``; with ``logits``, both heads output them (random
    logits: every class wins somewhere)."""
    cfg = toy_maskclip_cfg(clip, NAMES, cache_dir=str(tmp_path))
    cfg.test_cfg = dict(mode='whole', **test_cfg)
    ours = MODELS.build(cfg).eval()
    plain = MODELS.build(dict(cfg, type='EncoderDecoder')).eval()
    plain.load_state_dict(ours.state_dict())
    if logits is not None:
        for model in (ours, plain):
            model.decode_head.forward = lambda feats: logits
    return ours, plain


def random_logits(shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def samples(metas):
    return [SegDataSample(metainfo=copy.deepcopy(m)) for m in metas]


def predict(model, inputs, metas):
    with torch.no_grad():
        return model.predict(inputs, samples(metas))


# padded input (as mmseg's data preprocessor pads), a flipped image, an
# original size that is not a multiple of anything
PADDED = dict(ori_shape=(150, 227), img_shape=(60, 91), pad_shape=(64, 96),
              padding_size=[0, 5, 0, 4])
FLIPPED = dict(PADDED, flip=True, flip_direction='horizontal')
FLIPPED_V = dict(PADDED, flip=True, flip_direction='vertical')


@pytest.mark.parametrize('meta', [PADDED, FLIPPED, FLIPPED_V],
                         ids=['padded', 'flip', 'vertical flip'])
@pytest.mark.parametrize('chunk', [
    dict(class_chunk=1), dict(class_chunk=3), dict(class_chunk=64),
    dict(class_chunk=64, chunk_numel=2 * 150 * 227)],
    ids=['1', '3', '64', 'numel'])
def test_whole_labels_equal_mmseg(rn_clip, tmp_path, meta, chunk):
    logits = random_logits((2, 7, 4, 6))
    ours, plain = pair(rn_clip, tmp_path, logits, **chunk)
    inputs = torch.randn(2, 3, 64, 96)
    expected = predict(plain, inputs, [meta, meta])
    got = predict(ours, inputs, [meta, meta])
    for e, g in zip(expected, got):
        assert e.pred_sem_seg.data.unique().numel() == 7
        assert g.pred_sem_seg.data.dtype == e.pred_sem_seg.data.dtype
        assert torch.equal(g.pred_sem_seg.data, e.pred_sem_seg.data)
        # seg_logits: at the head's resolution, as documented
        assert g.seg_logits.data.shape == (7, 4, 6)
        assert e.seg_logits.data.shape == (7, 150, 227)


def test_ties_go_to_the_lower_class_across_chunks(rn_clip, tmp_path):
    logits = torch.zeros(1, 7, 2, 2)
    logits[:, 5] = 1.
    logits[:, 2] = 1.  # ties with class 5, in another chunk
    ours, plain = pair(rn_clip, tmp_path, logits, class_chunk=2)
    meta = dict(ori_shape=(70, 70), img_shape=(64, 64), pad_shape=(64, 64))
    inputs = torch.zeros(1, 3, 64, 64)
    got = predict(ours, inputs, [meta])[0]
    assert (got.pred_sem_seg.data == 2).all()
    assert torch.equal(got.pred_sem_seg.data,
                       predict(plain, inputs, [meta])[0].pred_sem_seg.data)


def test_slide_labels_equal_mmseg(rn_clip, tmp_path):
    slide = dict(mode='slide', crop_size=(64, 64), stride=(40, 40))
    ours, plain = pair(rn_clip, tmp_path, class_chunk=2)
    ours.test_cfg = ConfigDict(slide, class_chunk=2)
    plain.test_cfg = ConfigDict(slide)
    inputs = torch.randn(1, 3, 64, 100)
    meta = dict(ori_shape=(130, 190), img_shape=(64, 100),
                pad_shape=(64, 100), padding_size=[0, 0, 0, 0])
    expected = predict(plain, inputs, [meta])[0]
    got = predict(ours, inputs, [meta])[0]
    assert torch.equal(got.pred_sem_seg.data, expected.pred_sem_seg.data)
    assert got.seg_logits.data.shape == (7, 64, 100)


def test_bare_inputs_give_labels_at_the_input_size(rn_clip, tmp_path):
    logits = random_logits((1, 7, 2, 3))
    ours, plain = pair(rn_clip, tmp_path, logits, class_chunk=2)
    inputs = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        got, expected = ours.predict(inputs)[0], plain.predict(inputs)[0]
    assert got.pred_sem_seg.data.shape == (1, 64, 96)
    assert torch.equal(got.pred_sem_seg.data, expected.pred_sem_seg.data)


class LargestFloatTensor(TorchDispatchMode):
    """The most elements of any floating-point tensor an op returns."""

    def __init__(self):
        super().__init__()
        self.numel = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(t, torch.Tensor) and t.is_floating_point():
                self.numel = max(self.numel, t.numel())
        return out


def test_full_size_logits_of_a_chunk_at_a_time(rn_clip, tmp_path):
    """mmseg holds all 7 classes at the image's size; with class_chunk=2 no
    float tensor is larger than 2 classes' worth, with chunk_numel one."""
    logits = random_logits((1, 7, 2, 3))
    meta = dict(ori_shape=(300, 400), img_shape=(64, 96), pad_shape=(64, 96))
    inputs = torch.randn(1, 3, 64, 96)
    pixels = 300 * 400
    found = {}
    for name, test_cfg in (('plain', dict(class_chunk=None)),
                           ('2', dict(class_chunk=2)),
                           ('numel', dict(chunk_numel=pixels + 1))):
        model, _ = pair(rn_clip, tmp_path, logits, **test_cfg)
        with torch.no_grad(), LargestFloatTensor() as largest:
            model.predict(inputs, samples([meta]))
        found[name] = largest.numel
    assert found == {'plain': 7 * pixels, '2': 2 * pixels, 'numel': pixels}


def test_head_logits_take_the_compiled_path(rn_clip, tmp_path):
    """compile_for_inference reaches the chunked whole inference too."""
    ours, _ = pair(rn_clip, tmp_path, class_chunk=2)
    inputs = torch.randn(1, 3, 64, 96)
    meta = dict(ori_shape=(80, 120), img_shape=(64, 96), pad_shape=(64, 96))
    eager = predict(ours, inputs, [meta])[0]
    compile_for_inference(ours, mode=None, channels_last=True)
    calls = []
    extract_feat = ours.extract_feat
    ours.extract_feat = lambda x: calls.append(
        x.is_contiguous(memory_format=torch.channels_last)) or extract_feat(x)
    got = predict(ours, inputs, [meta])[0]
    assert calls == [True]
    assert torch.equal(got.pred_sem_seg.data, eager.pred_sem_seg.data)


@pytest.mark.parametrize('key, value', [
    ('class_chunk', 0), ('class_chunk', 2.5), ('chunk_numel', None),
    ('chunk_numel', -1)])
def test_bad_chunk_settings_are_named(rn_clip, tmp_path, key, value):
    cfg = toy_maskclip_cfg(rn_clip, NAMES, cache_dir=str(tmp_path))
    cfg.test_cfg = {'mode': 'whole', key: value}
    with pytest.raises(ValueError, match=rf'TrainingFreeSegmentor: '
                       rf'model.test_cfg.{key} must be a positive integer'):
        MODELS.build(cfg)


def test_the_maskclip_factory_builds_it(rn_clip, tmp_path):
    model = MODELS.build(toy_maskclip_cfg(rn_clip, NAMES,
                                          cache_dir=str(tmp_path)))
    assert isinstance(model, TrainingFreeSegmentor)
    assert model.chunk_sizes() == (64, 2**25)


def test_tools_test_gives_mmseg_metrics(vit_clip, tmp_path, monkeypatch):
    """tools/test.py (IoUMetric reads pred_sem_seg) on the toy VOC data:
    chunks of 3 of the 20 classes, the same metrics as EncoderDecoder."""
    from denseclip_helpers import load_tool
    from mmengine.config import Config

    from denseclip.models.heads import MaskClipHead
    from denseclip.toy.data import make_toy_dataset

    # the random toy CLIP's text never matches the toy images (every metric
    # 0): logits from the dense features alone vary over the image, so that
    # some pixels are right and the metrics can differ
    monkeypatch.setattr(MaskClipHead, 'cls_seg',
                        lambda self, feat: feat[:, :self.num_classes])
    root = str(tmp_path / 'voc')
    make_toy_dataset(root, layout='voc', num_train=1, num_val=3)
    cfg = Config.fromfile(
        'configs/maskclip/maskclip_vit16_512x512_voc12aug_20.py')
    cfg.model = toy_maskclip_cfg(vit_clip, 'voc20',
                                 cache_dir=str(tmp_path / 'cache'))
    for loader in (cfg.test_dataloader, cfg.val_dataloader):
        loader.update(num_workers=0, persistent_workers=False)
        loader.dataset.data_root = root
    config = str(tmp_path / 'maskclip_toy_voc.py')
    cfg.dump(config)
    test_tool = load_tool('test')
    metrics = {}
    for name, options in (
            ('chunked', ['model.test_cfg.class_chunk=3']),
            ('mmseg', ['model.type=EncoderDecoder'])):
        metrics[name] = test_tool.main([
            config, '--work-dir', str(tmp_path / name), '--cfg-options',
            *options])
    assert metrics['chunked'] == metrics['mmseg']
    assert metrics['chunked']['mIoU'] > 0 and metrics['chunked']['aAcc'] > 0
