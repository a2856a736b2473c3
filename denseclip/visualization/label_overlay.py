"""Class colours blended over an image, as mmseg's ``SegLocalVisualizer`` blends
them, without its full-size float64 copies and matplotlib figure."""
import colorsys
from typing import List, Sequence

import numpy as np

# pixels blended at once (float64 intermediates of ~4 x 3 x 8 bytes each)
_BAND_PIXELS = 2**20


def make_palette(num: int) -> List[List[int]]:
    """``num`` distinct, deterministic RGB colours: hues spread by the
    golden ratio."""
    colors = []
    for i in range(num):
        hue = (i * 0.618033988749895) % 1.0
        r, g, b = colorsys.hsv_to_rgb(hue, 0.75, 0.95)
        colors.append([int(r * 255), int(g * 255), int(b * 255)])
    return colors


def overlay_labels(image: np.ndarray, labels: np.ndarray,
                   palette: Sequence[Sequence[int]],
                   alpha: float) -> np.ndarray:
    """``image`` ``[H, W, 3]`` uint8 with each pixel's class colour blended in.

    Pixel for pixel what ``SegLocalVisualizer`` paints for ``pred_sem_seg``
    (``(image * (1 - alpha) + colour * alpha).astype(uint8)``; a label with no
    palette entry is blended with black), computed a band of rows at a time.
    ``palette`` is in ``image``'s channel order. Returns a new array.
    """
    if image.shape[:2] != labels.shape:
        raise ValueError(f'overlay_labels: labels of shape {labels.shape} '
                         f'for an image of shape {image.shape}')
    lut = np.zeros((max(len(palette), int(labels.max(initial=0)) + 1), 3),
                   np.uint8)
    lut[:len(palette)] = np.asarray(palette, np.uint8).reshape(-1, 3)
    out = np.empty_like(image)
    rows = max(1, _BAND_PIXELS // max(image.shape[1], 1))
    for r in range(0, image.shape[0], rows):
        band = slice(r, r + rows)
        out[band] = (image[band] * (1 - alpha) +
                     lut[labels[band]] * alpha).astype(np.uint8)
    return out
