"""A legend (colour swatch, class name, share of pixels) drawn into an image's
top-left corner: matplotlib renders only the legend, not the image."""
import warnings
from typing import List, Sequence, Tuple

import numpy as np

# with more class names, the legend lists the classes present
LEGEND_ROWS = 30
# mmengine's Visualizer figure: font sizes are in points at this dpi
_DPI = 100
# widest glyph, in ems, that the legend's canvas leaves room for
_MAX_GLYPH_EM = 1.25
# pixels composited at once
_BAND_PIXELS = 2**20


def font_for(texts: Sequence[str]):
    """A matplotlib font with glyphs for every character of ``texts``.

    None: the default font has them all. If no installed font has them, a
    warning names the text (the legend then shows boxes for the missing
    glyphs; install e.g. fonts-noto-cjk).
    """
    from matplotlib import font_manager, ft2font
    chars = {c for c in ''.join(texts) if not c.isspace()}

    def covers(path: str) -> bool:
        try:
            charmap = ft2font.FT2Font(path).get_charmap()
        except Exception:  # noqa: BLE001 - unreadable font: skip it
            return False
        return all(ord(c) in charmap for c in chars)

    default = font_manager.findfont(
        font_manager.FontProperties(family=['sans-serif']))
    if covers(default):
        return None
    for entry in font_manager.fontManager.ttflist:
        # 'Last Resort' maps every code point to a placeholder glyph
        if 'lastresort' not in entry.name.replace(' ', '').lower() and \
                covers(entry.fname):
            return font_manager.FontProperties(fname=entry.fname)
    missing = [t for t in texts if not all(
        ord(c) in ft2font.FT2Font(default).get_charmap() for c in t
        if not c.isspace())]
    warnings.warn(f'no installed font has glyphs for {missing}; the legend '
                  f'shows boxes for them (install a font such as '
                  f'fonts-noto-cjk)')
    return None


def legend_entries(names: Sequence[str], shares: Sequence[float],
                   palette, max_rows: int = LEGEND_ROWS
                   ) -> Tuple[List[str], List[float], list]:
    """(names, shares, colours) for the legend: every class when they fit,
    else the classes present, largest share first, and a last row saying
    how many are not shown."""
    if len(names) <= max_rows:
        return list(names), list(shares), list(palette)
    order = [i for i in np.argsort(-np.asarray(shares), kind='stable')
             if shares[i] > 0][:max_rows - 1]
    rest = len(names) - len(order)
    return ([names[i] for i in order] + [f'... {rest} more classes'],
            [shares[i] for i in order] + [sum(shares) - sum(
                shares[i] for i in order)],
            [palette[i] for i in order] + [[0, 0, 0]])


def render_legend(image_size: Tuple[int, int], names: Sequence[str],
                  shares: Sequence[float], palette, font=None) -> np.ndarray:
    """The legend of an image of ``image_size`` ``(H, W)`` as an RGBA patch
    for its top-left corner (transparent where the image shows through).

    The layout, shapes and text are those the demo drew with mmengine's
    ``Visualizer`` on the whole image (a box of 55% black, swatches with a
    white edge, white text ``name  share``), on a canvas only as large as
    the legend.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import PolyCollection
    from matplotlib.figure import Figure
    h, w = image_size
    size = max(8, min(h, w) // 28)  # text height in pixels
    pad = max(2, size // 3)
    texts = [f'{name}  {share:.0%}' for name, share in zip(names, shares)]
    longest = max(len(t) for t in texts)
    width = int(min(w - 2 * pad, (longest * 0.55 + 2) * size + 3 * pad))
    height = min(h - 2 * pad, len(names) * (size + pad) + pad)
    font_px = int(size * 0.8) * _DPI / 72
    canvas_w = min(w, int(max(2 * pad + width, 4 * pad + size +
                              longest * font_px * _MAX_GLYPH_EM)))
    canvas_h = min(h, 2 * pad + height + 2)
    line = 1  # points: the narrowest edge mmengine's Visualizer draws

    fig = Figure(frameon=False, dpi=_DPI)
    ax = fig.add_subplot()
    ax.axis(False)
    fig.subplots_adjust(left=0, right=1, bottom=0, top=1)
    fig.set_size_inches((canvas_w + 1e-2) / _DPI, (canvas_h + 1e-2) / _DPI)
    ax.set_xlim(0, canvas_w)
    ax.set_ylim(canvas_h, 0)
    ax.set_aspect('equal')

    def boxes(corners):
        return [np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]],
                         np.float32) for x1, y1, x2, y2 in corners]

    ax.add_collection(PolyCollection(
        boxes([(pad, pad, pad + width, pad + height)]), alpha=0.55,
        facecolor='black', edgecolors='black', linewidths=[line]))
    swatches, positions = [], []
    for i in range(len(names)):
        y = pad + pad + i * (size + pad)
        swatches.append((2 * pad, y, 2 * pad + size, y + size))
        positions.append((3 * pad + size, y + size / 2))
    ax.add_collection(PolyCollection(
        boxes(swatches), alpha=1.0, edgecolors='white',
        facecolor=[tuple(c / 255 for c in color) for color in palette],
        linewidths=[line] * len(swatches)))
    for text, (x, y) in zip(texts, positions):
        ax.text(x, y, text, size=int(size * 0.8), verticalalignment='center',
                horizontalalignment='left', family='sans-serif',
                fontproperties=font, color='white')
    canvas = FigureCanvasAgg(fig)
    with warnings.catch_warnings():  # font_for() already warned, once
        warnings.filterwarnings('ignore', r'Glyph \d+ .* missing from font')
        canvas.draw()
    rgba = np.array(canvas.buffer_rgba())[:canvas_h, :canvas_w]
    return rgba


def draw_legend(image: np.ndarray, names: Sequence[str],
                shares: Sequence[float], palette, font=None,
                bgr: bool = False) -> np.ndarray:
    """Draw the legend (:func:`render_legend`) into ``image``'s top-left
    corner, in place, and return ``image``. ``palette`` is RGB; ``bgr``:
    ``image`` is in OpenCV's BGR order."""
    patch = render_legend(image.shape[:2], names, shares, palette, font)
    colour = patch[..., 2::-1] if bgr else patch[..., :3]
    alpha = patch[..., 3:] / 255.
    h, w = patch.shape[:2]
    rows = max(1, _BAND_PIXELS // max(w, 1))
    for r in range(0, h, rows):
        band = slice(r, min(r + rows, h))
        under = image[band, :w]
        under[...] = np.rint(under * (1 - alpha[band]) +
                             colour[band] * alpha[band]).astype(np.uint8)
    return image
