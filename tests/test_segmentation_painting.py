"""denseclip.visualization: the demo's overlay is mmseg's SegLocalVisualizer
overlay, pixel for pixel; the legend looks as mmengine's Visualizer drew it
on the whole image, but only the legend is rendered."""
import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample
from mmseg.visualization import SegLocalVisualizer

from denseclip.visualization import draw_legend, make_palette, overlay_labels
from denseclip.visualization.legend import render_legend


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


def mmengine_legend(visualizer, image, names, shares, palette):
    """The demo's former legend: mmengine's Visualizer drawing on a figure
    of the whole image (the same layout as render_legend)."""
    h, w = image.shape[:2]
    size = max(8, min(h, w) // 28)
    pad = max(2, size // 3)
    texts = [f'{name}  {share:.0%}' for name, share in zip(names, shares)]
    width = int(min(w - 2 * pad, (max(len(t) for t in texts) * 0.55 + 2) *
                    size + 3 * pad))
    height = min(h - 2 * pad, len(names) * (size + pad) + pad)
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


@pytest.mark.parametrize('h, w, num', [(48, 64, 3), (600, 800, 20)])
def test_legend_looks_as_mmengine_drew_it(h, w, num):
    image, labels = scene(h, w, num)
    names = [f'object {i}' for i in range(num)]
    palette = make_palette(num)
    shares = np.bincount(labels.ravel(), minlength=num) / labels.size
    visualizer = mmseg_overlay(image, labels, names, palette, 0.5,
                               f'legend_{h}')
    overlay = visualizer.get_image()
    expected = mmengine_legend(visualizer, overlay, names, shares, palette)
    got = draw_legend(overlay.copy(), names, shares, palette)
    patch = render_legend((h, w), names, shares, palette)
    ph, pw = patch.shape[:2]
    # outside the legend's canvas the image is untouched
    outside = np.ones((h, w), bool)
    outside[:ph, :pw] = False
    assert np.array_equal(got[outside], overlay[outside])
    assert (patch[..., 3] > 0).mean() > 0.3  # the legend fills its canvas
    # inside, antialiasing differs by a few levels at most
    diff = np.abs(got.astype(int) - expected)
    assert diff.max() <= 12 and diff.mean() < 1
    assert np.abs(got.astype(int) - overlay).mean() > 1  # a legend is there


def test_legend_drawn_into_a_bgr_image_has_bgr_colours():
    image = np.full((120, 160, 3), 128, np.uint8)
    names, shares = ['red', 'blue'], [0.5, 0.5]
    palette = [[255, 0, 0], [0, 0, 255]]
    rgb = draw_legend(image.copy(), names, shares, palette)
    bgr = draw_legend(image.copy(), names, shares, palette, bgr=True)
    assert np.array_equal(bgr[..., ::-1], rgb)

