"""denseclip.visualization: the demo's overlay is mmseg's SegLocalVisualizer
overlay, pixel for pixel; the legend lists the classes present and looks as
mmengine's Visualizer drew it on the whole image, but only the legend is
rendered, scaled to cover at most an eighth of the image, or beside a small
one."""
import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample
from mmseg.visualization import SegLocalVisualizer

from denseclip.visualization import (draw_legend, format_share,
                                     legend_entries, legend_layout,
                                     make_palette, overlay_labels)
from denseclip.visualization.legend import (MAX_COVER, MIN_TEXT_PX,
                                            legend_texts, render_legend)


def scene(h, w, num, seed=0):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    labels = rng.integers(0, num, (h, w))
    labels[:h // 2] = 0
    return image, labels


def mmseg_overlay(image, labels, names, palette, alpha, name):
    """What the demo painted before: SegLocalVisualizer on the whole image."""
    visualizer = SegLocalVisualizer(name=name, alpha=alpha)
    visualizer.dataset_meta = dict(classes=names, palette=palette)
    sample = SegDataSample()
    sample.pred_sem_seg = PixelData(data=torch.from_numpy(labels)[None])
    visualizer.add_datasample('x', image, sample, draw_gt=False,
                              draw_pred=True, show=False, with_labels=False)
    return visualizer


def mmengine_legend(visualizer, image, names, shares, palette, size):
    """The demo's former legend: mmengine's Visualizer drawing on a figure
    of the whole image (the same layout as the legend drawn inside an
    image), text ``size`` pixels high."""
    pad = max(2, size // 3)
    texts = [f'{name}  {format_share(share)}'
             for name, share in zip(names, shares)]
    width = int((max(len(t) for t in texts) * 0.55 + 2) * size + 3 * pad)
    height = len(names) * (size + pad) + pad
    visualizer.set_image(image)
    visualizer.draw_bboxes(
        np.array([[pad, pad, pad + width, pad + height]]),
        edge_colors='black', face_colors='black', alpha=0.55, line_widths=0)
    swatches, positions = [], []
    for i in range(len(names)):
        y = pad + pad + i * (size + pad)
        swatches.append([2 * pad, y, 2 * pad + size, y + size])
        positions.append([3 * pad + size, y + size / 2])
    visualizer.draw_bboxes(
        np.array(swatches, dtype=np.float32), edge_colors='white',
        face_colors=[tuple(c) for c in palette], alpha=1.0, line_widths=1)
    visualizer.draw_texts(
        texts, np.array(positions), font_sizes=int(size * 0.8),
        colors='white', vertical_alignments='center')
    return visualizer.get_image()


@pytest.mark.parametrize('h, w, num, alpha', [
    (48, 64, 3, 0.5), (301, 403, 20, 0.3), (7, 5, 2, 0.9)])
def test_overlay_is_segl_local_visualizers(h, w, num, alpha):
    image, labels = scene(h, w, num)
    names = [f'c{i}' for i in range(num)]
    palette = make_palette(num)
    visualizer = mmseg_overlay(image, labels, names, palette, alpha,
                               f'overlay_{h}')
    expected = visualizer.get_image()
    got = overlay_labels(image, labels, palette, alpha)
    assert got.dtype == np.uint8 and got.shape == image.shape
    assert np.array_equal(got, expected)


def test_overlay_in_bgr_is_the_rgb_overlay_flipped():
    image, labels = scene(40, 30, 4)
    palette = make_palette(4)
    rgb = overlay_labels(image, labels, palette, 0.5)
    bgr = overlay_labels(image[..., ::-1], labels,
                         [c[::-1] for c in palette], 0.5)
    assert np.array_equal(bgr[..., ::-1], rgb)


def test_overlay_names_a_shape_mismatch():
    with pytest.raises(ValueError, match=r'labels of shape \(4, 5\) for an '
                       r'image of shape \(5, 4, 3\)'):
        overlay_labels(np.zeros((5, 4, 3), np.uint8), np.zeros((4, 5), int),
                       make_palette(2), 0.5)


@pytest.mark.parametrize('h, w, num, size', [(600, 800, 4, 21),
                                            (600, 800, 20, 14)])
def test_legend_looks_as_mmengine_drew_it(h, w, num, size):
    """Inside the image, as mmengine drew it: at the default text size (one
    pixel per 28 of the short side), or smaller where 20 classes would
    cover more than an eighth of the image."""
    image, labels = scene(h, w, num)
    names = [f'object {i}' for i in range(num)]
    palette = make_palette(num)
    shares = np.bincount(labels.ravel(), minlength=num) / labels.size
    layout = legend_layout((h, w), legend_texts(names, shares))
    assert not layout.beside and layout.size == size
    visualizer = mmseg_overlay(image, labels, names, palette, 0.5,
                               f'legend_{h}_{num}')
    overlay = visualizer.get_image()
    expected = mmengine_legend(visualizer, overlay, names, shares, palette,
                               size)
    got = draw_legend(overlay.copy(), names, shares, palette)
    patch = render_legend((h, w), names, shares, palette)
    ph, pw = patch.shape[:2]
    assert got.shape == overlay.shape
    # outside the legend's canvas the image is untouched
    outside = np.ones((h, w), bool)
    outside[:ph, :pw] = False
    assert np.array_equal(got[outside], overlay[outside])
    # inside, antialiasing differs by a few levels at most
    diff = np.abs(got.astype(int) - expected)
    assert diff.max() <= 12 and diff.mean() < 1
    assert np.abs(got.astype(int) - overlay).mean() > 1  # a legend is there


VOC21 = ['background', 'aeroplane', 'bicycle', 'bird', 'boat', 'bottle',
         'bus', 'car', 'cat', 'chair', 'cow', 'dining table', 'dog', 'horse',
         'motorbike', 'person, person in shirt (+5)', 'potted plant',
         'sheep', 'sofa', 'train', 'television monitor, tv monitor (+3)']


def test_legend_of_a_photo_lists_the_classes_present_and_covers_little():
    """A 512 x 512 photo labelled with VOC's 21 classes, 8 of them present
    (2 on under half a percent): the legend lists those 8, largest first,
    and covers at most an eighth of the photo (the former legend listed all
    21, most at 0 %, over half of it)."""
    h = w = 512
    labels = np.zeros((h, w), np.int64)
    present = {15: 0.35, 2: 0.25, 0: 0.2, 20: 0.1, 4: 0.06, 7: 0.036,
               9: 0.002, 18: 0.002}
    flat, start = labels.reshape(-1), 0
    for k, share in present.items():
        flat[start:start + int(share * h * w)] = k
        start += int(share * h * w)
    flat[start:] = 15
    shares = np.bincount(flat, minlength=21) / flat.size
    palette = make_palette(21)
    names, values, colours = legend_entries(VOC21, shares, palette)
    assert names == [VOC21[k] for k in (15, 2, 0, 20, 4, 7, 9, 18)]
    assert legend_texts(names, values)[-2:] == ['chair  <1%', 'sofa  <1%']
    image = np.full((h, w, 3), 128, np.uint8)
    got = draw_legend(image.copy(), names, values, colours)
    assert got.shape == image.shape
    covered = (got != image).any(-1)
    assert 0.03 < covered.mean() <= MAX_COVER
    assert legend_layout((h, w), legend_texts(names, values)).size >= \
        MIN_TEXT_PX


@pytest.mark.parametrize('h, w', [(120, 150), (48, 64)])
def test_legend_of_a_small_image_goes_beside_it(h, w):
    """Inside, even the smallest text would cover a third of the image: the
    legend goes in a panel to its right, the image left as it is."""
    image, labels = scene(h, w, 5)
    names = ['textured background', 'red disc', 'green square',
             'blue triangle', 'yellow ring']
    shares = np.bincount(labels.ravel(), minlength=5) / labels.size
    palette = make_palette(5)
    got = draw_legend(image.copy(), names, shares, palette)
    assert got.shape[0] == max(h, legend_layout(
        (h, w), legend_texts(names, shares)).canvas_h)
    assert w < got.shape[1] < w + 160  # the panel only as wide as its text
    assert np.array_equal(got[:h, :w], image)
    panel = got[:, w:]
    assert (panel.max(-1) > 200).mean() > 0.02  # white text, swatches
    if got.shape[0] > h:  # below a short image: the panel's black
        assert not got[h:, :w].any()


def test_no_classes_no_legend():
    image = np.full((20, 30, 3), 7, np.uint8)
    assert draw_legend(image, [], [], []) is image


def test_legend_drawn_into_a_bgr_image_has_bgr_colours():
    image = np.full((120, 160, 3), 128, np.uint8)
    names, shares = ['red', 'blue'], [0.5, 0.5]
    palette = [[255, 0, 0], [0, 0, 255]]
    rgb = draw_legend(image.copy(), names, shares, palette)
    bgr = draw_legend(image.copy(), names, shares, palette, bgr=True)
    assert np.array_equal(bgr[..., ::-1], rgb)

