"""PAMR tile by tile (issue 19: ``--pamr`` on an 8000x6000 photo was killed
at 24 GB): each tile read with a halo of num_iter x max(dilations) pixels
gives the whole image's refinement, and the segmentor's labels are those of
the whole-image protocol."""
import copy

import pytest
import torch
import torch.nn.functional as F
from maskclip_helpers import toy_maskclip_cfg
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

from denseclip.models.postprocess import PAMR
from denseclip.models.postprocess.resized_crop import resized_crop

SETTINGS = [(10, (8, 16)), (3, (1, 2)), (2, (5, )), (1, (3, 7, 11)),
            (0, (3, ))]


def image_and_scores(seed=0, size=(300, 200), queries=5):
    g = torch.Generator().manual_seed(seed)
    # smooth regions with edges, as a photo: a few blocks plus noise
    blocks = torch.rand(1, 3, 6, 4, generator=g)
    image = F.interpolate(blocks, size, mode='nearest') + \
        0.05 * torch.rand(1, 3, *size, generator=g)
    scores = F.interpolate(torch.randn(1, queries, 9, 7, generator=g), size,
                           mode='bilinear')
    return image, scores


@pytest.mark.parametrize('num_iter, dilations', SETTINGS)
def test_tiles_with_the_halo_give_the_whole_image(num_iter, dilations):
    image, scores = image_and_scores()
    whole = PAMR(num_iter, dilations, tile_size=None)
    expected = whole.propagate(scores, whole.affinity(image))
    tiled = PAMR(num_iter, dilations, tile_size=64)
    assert len(list(tiled.tiles((300, 200)))) == 5 * 4
    got = tiled.refine_tiled(image, scores)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert torch.equal(got.argmax(1), expected.argmax(1))


class NarrowHalo(PAMR):
    halo = 8  # one iteration's reach of dilation 8


def test_a_narrower_halo_changes_the_result():
    """The check above can fail: 10 iterations reach 160 pixels."""
    image, scores = image_and_scores()
    whole = PAMR(10, (8, 16), tile_size=None)
    expected = whole.propagate(scores, whole.affinity(image))
    got = NarrowHalo(10, (8, 16), tile_size=64).refine_tiled(image, scores)
    assert (got - expected).abs().max() > 1e-2


def test_tiles_cover_the_image_once():
    pamr = PAMR(2, (4, ), tile_size=50)
    assert pamr.halo == 8
    seen = torch.zeros(120, 75, dtype=torch.long)
    for rows, cols, inner_rows, inner_cols in pamr.tiles((120, 75)):
        assert rows.start >= 0 and rows.stop <= 120 and cols.stop <= 75
        seen[rows, cols][inner_rows, inner_cols] += 1
    assert torch.equal(seen, torch.ones_like(seen))
    with pytest.raises(ValueError, match='tile_size must be a positive'):
        PAMR(tile_size=0)


@pytest.mark.parametrize('align_corners', [False, True])
@pytest.mark.parametrize('src, dst', [((17, 23), (300, 200)),
                                      ((40, 30), (13, 11))])
def test_resized_crop_is_a_window_of_the_resize(src, dst, align_corners):
    x = torch.randn(2, 3, *src, generator=torch.Generator().manual_seed(1))
    full = F.interpolate(x, dst, mode='bilinear', align_corners=align_corners)
    rows, cols = slice(3, dst[0] - 2), slice(1, dst[1])
    torch.testing.assert_close(
        resized_crop(x, dst, rows, cols, align_corners),
        full[..., rows, cols], rtol=0, atol=1e-5)


# the segmentor: background as 2 words, a class with 2 synonyms
NAMES = [['sky', 'wall'], 'cat', ['person', 'person in shirt'], 'car']
META = dict(ori_shape=(301, 203), img_shape=(60, 41), pad_shape=(64, 48),
            padding_size=[0, 7, 0, 4])


@pytest.mark.parametrize('prob_thd', [0., 0.4])
def test_segmentor_labels_tiled_equal_the_whole_image(rn_clip, tmp_path,
                                                      prob_thd):
    """Class chunks of 2 names and 64-pixel tiles give the labels of the
    protocol on the whole image (class_chunk=None: all names, PAMR on the
    whole image at once, as before tiling)."""
    g = torch.Generator().manual_seed(0)
    logits = 0.3 * torch.randn(1, 6, 8, 6, generator=g)
    # flat regions plus noise, as a photo: on an exactly flat region PAMR's
    # affinity divides float rounding (1e-7) by a std of about as little,
    # and the labels would depend on the thread count
    inputs = F.interpolate(torch.rand(1, 3, 8, 6, generator=g), (64, 48),
                           mode='nearest') + \
        0.05 * torch.rand(1, 3, 64, 48, generator=g)
    labels = {}
    for chunk, tile in ((None, None), (2, 64), (64, None)):
        cfg = toy_maskclip_cfg(rn_clip, NAMES, cache_dir=str(tmp_path))
        cfg.update(prob_thd=prob_thd, pamr=dict(
            type='PAMR', num_iter=3, dilations=(2, 4), tile_size=tile))
        cfg.test_cfg = dict(mode='whole', class_chunk=chunk)
        model = MODELS.build(cfg).eval()
        model.decode_head.forward = lambda feats: logits
        with torch.no_grad():
            sample = model.predict(
                inputs, [SegDataSample(metainfo=copy.deepcopy(META))])[0]
        labels[chunk, tile] = sample.pred_sem_seg.data[0]
    whole = labels[None, None]
    assert whole.shape == (301, 203) and len(whole.unique()) >= 3
    assert torch.equal(labels[2, 64], whole)
    assert torch.equal(labels[64, None], whole)


@pytest.mark.parametrize('tile, lines', [(128, 10), (256, 0)])
def test_pamr_on_many_tiles_reports_progress(rn_clip, tmp_path, monkeypatch,
                                             tile, lines):
    """A photo of many tiles says how far PAMR is (about ten lines); an
    image of a few tiles, as a benchmark's, says nothing."""
    from denseclip.models.segmentors import training_free_segmentor as tfs
    said = []
    monkeypatch.setattr(tfs, 'print_log', lambda msg, **kw: said.append(msg))
    cfg = toy_maskclip_cfg(rn_clip, NAMES, cache_dir=str(tmp_path))
    cfg.update(pamr=dict(type='PAMR', num_iter=1, dilations=(2, ),
                         tile_size=tile))
    cfg.test_cfg = dict(mode='whole', class_chunk=2)
    model = MODELS.build(cfg).eval()
    model.decode_head.forward = lambda feats: torch.zeros(1, 6, 8, 6)
    # 3 x 10 tiles of 128, 2 x 5 of 256
    meta = dict(META, ori_shape=(301, 1203))
    with torch.no_grad():
        model.predict(torch.rand(1, 3, 64, 48),
                      [SegDataSample(metainfo=copy.deepcopy(meta))])
    assert len(said) == lines
    if lines:
        assert said[0].startswith('PAMR: 3/30 tiles of the 1203x301 image '
                                  'done (')
        assert said[-1].startswith('PAMR: 30/30 tiles')
