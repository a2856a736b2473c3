"""A legend (colour swatch, class name, share of pixels) of the classes
present: drawn into an image's top-left corner, its text scaled down until
it covers at most :data:`MAX_COVER` of the image, or, where even the
smallest text would cover more (small images, many classes), in a panel
beside the image. matplotlib renders only the legend, not the image."""
import warnings
from dataclasses import dataclass, replace
from typing import List, Sequence, Tuple

import numpy as np

# rows at most: with more classes present, the last row counts the rest
LEGEND_ROWS = 30
# the largest share of an image's area a legend drawn into it may cover
MAX_COVER = 1 / 8
# text height in pixels: the default one per 28 pixels of the image's short
# side, scaled down to fit, never below this
MIN_TEXT_PX = 8
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


def format_share(share: float) -> str:
    """A class's share of the pixels: ``'35%'``; ``'<1%'`` for a class
    present on less than half a percent (not ``'0%'``)."""
    return '<1%' if 0 < share < 0.005 else f'{share:.0%}'


def legend_entries(names: Sequence[str], shares: Sequence[float],
                   palette, max_rows: int = LEGEND_ROWS
                   ) -> Tuple[List[str], List[float], list]:
    """(names, shares, colours) for the legend: the classes present
    (share > 0), largest share first; with more than ``max_rows`` of them,
    the first ``max_rows - 1`` and a last row saying how many more are
    present (and their share)."""
    order = [int(i) for i in np.argsort(-np.asarray(shares, float),
                                        kind='stable') if shares[i] > 0]
    if len(order) > max_rows:
        shown, rest = order[:max_rows - 1], order[max_rows - 1:]
        return ([names[i] for i in shown] + [f'... {len(rest)} more classes'],
                [float(shares[i]) for i in shown] +
                [float(sum(shares[i] for i in rest))],
                [palette[i] for i in shown] + [[0, 0, 0]])
    return ([names[i] for i in order], [float(shares[i]) for i in order],
            [palette[i] for i in order])


@dataclass(frozen=True)
class LegendLayout:
    """Where and how large a legend is drawn: text height ``size`` and
    ``pad`` in pixels; the dark box at ``(pad, pad)`` of ``box_w x box_h``
    on a canvas of ``canvas_w x canvas_h``; the canvas over the image's
    top-left corner, or (``beside``) in a panel right of the image."""

    size: int
    pad: int
    box_w: int
    box_h: int
    canvas_w: int
    canvas_h: int
    beside: bool


def _measure(texts: Sequence[str], size: int, beside: bool) -> LegendLayout:
    pad = max(2, size // 3)
    longest = max(len(t) for t in texts)
    box_w = int((longest * 0.55 + 2) * size + 3 * pad)
    box_h = len(texts) * (size + pad) + pad
    # room for glyphs wider than the box's estimate
    font_px = int(size * 0.8) * _DPI / 72
    canvas_w = int(max(2 * pad + box_w,
                       4 * pad + size + longest * font_px * _MAX_GLYPH_EM))
    return LegendLayout(size, pad, box_w, box_h, canvas_w,
                        2 * pad + box_h + 2, beside)


def legend_layout(image_size: Tuple[int, int],
                  texts: Sequence[str]) -> LegendLayout:
    """The layout of a legend of ``texts`` for an image of ``image_size``
    ``(H, W)``.

    Inside the image at the largest text size (from one pixel per 28 of
    the short side down to :data:`MIN_TEXT_PX`) whose box fits and covers
    at most :data:`MAX_COVER` of the image; else beside it, at the largest
    size whose legend is no taller than the image (at least
    :data:`MIN_TEXT_PX`: then the output is taller than the image).
    """
    h, w = image_size
    largest = max(MIN_TEXT_PX, min(h, w) // 28)
    sizes = range(largest, MIN_TEXT_PX - 1, -1)
    for size in sizes:
        inside = _measure(texts, size, beside=False)
        if (inside.box_w + 2 * inside.pad <= w and
                inside.box_h + 2 * inside.pad <= h and
                inside.box_w * inside.box_h <= MAX_COVER * h * w):
            return replace(inside, canvas_w=min(w, inside.canvas_w),
                           canvas_h=min(h, inside.canvas_h))
    for size in sizes:
        beside = _measure(texts, size, beside=True)
        if beside.canvas_h <= h:
            break
    return beside


def _render(layout: LegendLayout, texts: Sequence[str], palette,
            font=None) -> np.ndarray:
    """The legend as an RGBA patch of ``layout``'s canvas (transparent where
    what lies under it shows through).

    The shapes and text are those the demo drew with mmengine's
    ``Visualizer`` on the whole image (a box of 55% black, swatches with a
    white edge, white text ``name  share``), on a canvas only as large as
    the legend.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import PolyCollection
    from matplotlib.figure import Figure
    size, pad = layout.size, layout.pad
    canvas_w, canvas_h = layout.canvas_w, layout.canvas_h
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
        boxes([(pad, pad, pad + layout.box_w, pad + layout.box_h)]),
        alpha=0.55, facecolor='black', edgecolors='black', linewidths=[line]))
    swatches, positions = [], []
    for i in range(len(texts)):
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
    return np.array(canvas.buffer_rgba())[:canvas_h, :canvas_w]


def legend_texts(names: Sequence[str], shares: Sequence[float]) -> List[str]:
    """The legend's rows: ``name  share``."""
    return [f'{name}  {format_share(share)}'
            for name, share in zip(names, shares)]


def render_legend(image_size: Tuple[int, int], names: Sequence[str],
                  shares: Sequence[float], palette, font=None) -> np.ndarray:
    """The legend of an image of ``image_size`` ``(H, W)`` as an RGBA patch
    (:func:`legend_layout` says where it goes)."""
    texts = legend_texts(names, shares)
    return _render(legend_layout(image_size, texts), texts, palette, font)


def draw_legend(image: np.ndarray, names: Sequence[str],
                shares: Sequence[float], palette, font=None,
                bgr: bool = False) -> np.ndarray:
    """``image`` with the legend of ``names`` (:func:`legend_entries`: the
    classes present): drawn into its top-left corner, in place, or in a
    black panel right of it, a new and wider array (:func:`legend_layout`).
    Use the returned array. ``palette`` is RGB; ``bgr``: ``image`` is in
    OpenCV's BGR order. No names: ``image`` unchanged."""
    if not len(names):
        return image
    texts = legend_texts(names, shares)
    layout = legend_layout(image.shape[:2], texts)
    patch = _render(layout, texts, palette, font)
    if layout.beside:  # the panel only as wide as what was drawn
        drawn = np.flatnonzero(patch[..., 3].any(axis=0))
        patch = patch[:, :drawn[-1] + 1 + layout.pad]
    h, w = patch.shape[:2]
    if layout.beside:
        ih, iw = image.shape[:2]
        out = np.zeros((max(ih, h), iw + w) + image.shape[2:], image.dtype)
        out[:ih, :iw] = image
        target = out[:h, iw:]
    else:
        out = image
        target = image[:h, :w]
    colour = patch[..., 2::-1] if bgr else patch[..., :3]
    alpha = patch[..., 3:] / 255.
    rows = max(1, _BAND_PIXELS // max(w, 1))
    for r in range(0, h, rows):
        band = slice(r, min(r + rows, h))
        under = target[band]
        under[...] = np.rint(under * (1 - alpha[band]) +
                             colour[band] * alpha[band]).astype(np.uint8)
    return out
