"""Open-vocabulary segmentation of your own images with MaskCLIP: any class names.

    python tools/maskclip_demo.py IMAGE --classes "Batman,Joker,building,sky" \\
        --clip pretrained/ViT-B-16.pt --out result.png
    python tools/maskclip_demo.py FOLDER --classes-file names.txt --out FOLDER_OUT
    ... [--ks [THRESH]] [--pd [THRESH]] [--templates single] [--device cuda]

Writes each image overlaid with the predicted classes' colours and a legend
(every class, with its share of the image; with more than 30 names, the
classes present), as a PNG of the input's size, using mmseg's
``SegLocalVisualizer``. Any image OpenCV reads: grayscale and 16-bit images
are converted to 8-bit colour, an alpha channel is dropped. Memory stays
bounded with many class names (1,000 and more): their text embeddings are
computed a few classes at a time, and the logits are brought to the image's
size 64 classes at a time. An output is written under a temporary name and
renamed, so an interrupted run leaves no partial file. The model is built from the CLIP file alone
(ResNet or ViT and their widths are read from its tensors); class names are
free text (phrases, any script); their text embeddings are computed once and
cached (``~/.cache/denseclip``). ``--ks`` / ``--pd`` switch on key smoothing /
prompt denoising (thresholds 1.0 / 0.5, the reference's, unless given).

Exit status: 0 on success, 2 for bad arguments (no class names, missing CLIP
file or input), 1 if an image cannot be read (the others are still written).
"""
import argparse
import colorsys
import itertools
import os
import os.path as osp
import sys
import warnings
from typing import List, Sequence

import cv2
import mmcv
import numpy as np
import torch
from mmengine.config import Config
from mmengine.structures import PixelData
# mmseg's own inference pipeline (what inference_model runs first)
from mmseg.apis.utils import _preprare_data
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from mmseg.utils import register_all_modules
from mmseg.visualization import SegLocalVisualizer

import denseclip  # noqa: F401  (registers the modules)
from denseclip.models.clip_arch import describe
from denseclip.apis import maskclip_model_cfg
from denseclip.clip_files import find_clip_file
from denseclip.utils import write_bytes_atomic
from denseclip.models.text.prompt_class_names import (read_class_name_file,
                                                      resolve_class_names)

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
# classes whose full-resolution logits are held at once (predict_labels)
CLASS_CHUNK = 64
# legend rows; with more class names only those present are listed
LEGEND_ROWS = 30
_visualizer_ids = itertools.count()


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description='MaskCLIP open-vocabulary segmentation demo')
    parser.add_argument('input', help='an image, or a folder of images')
    names = parser.add_mutually_exclusive_group(required=True)
    names.add_argument('--classes',
                       help='class names separated by commas')
    names.add_argument('--classes-file',
                       help='a text file with one class name per line')
    parser.add_argument('--clip', default='pretrained/ViT-B-16.pt',
                        help='OpenAI CLIP file or model name')
    parser.add_argument('--out', required=True,
                        help='output PNG (for an image) or folder')
    parser.add_argument('--ks', type=float, nargs='?', const=1.0, default=0.,
                        help='key smoothing (threshold, default 1.0)')
    parser.add_argument('--pd', type=float, nargs='?', const=0.5, default=0.,
                        help='prompt denoising (threshold, default 0.5)')
    parser.add_argument('--templates', default='imagenet85',
                        help="prompt templates: 'imagenet85' (the paper's) "
                        "or 'single' (faster start)")
    parser.add_argument('--scale', type=int, nargs=2, default=(2048, 512),
                        metavar=('LONG', 'SHORT'),
                        help='resize to fit in LONG x SHORT (keep ratio), '
                        'as the test configs do')
    parser.add_argument('--opacity', type=float, default=0.5)
    parser.add_argument('--text-heads', type=int,
                        help='text tower heads if not width // 64 (only for '
                        'non-OpenAI models, e.g. the toy CLIP files)')
    parser.add_argument('--cache-dir', help='text embedding cache directory')
    parser.add_argument('--device', default='cpu')
    return parser


def parse_class_names(args, parser_error) -> List[str]:
    """Class names from ``--classes`` or ``--classes-file`` (at least two).

    A file is read by :func:`read_class_name_file` (UTF-8, blank lines
    skipped; a non-UTF-8 byte or a duplicate is an error naming the line).
    """
    try:
        if args.classes_file is not None:
            names = read_class_name_file(args.classes_file)
        else:
            names = [n for n in (name.strip()
                                 for name in args.classes.split(',')) if n]
            if not names:
                parser_error('no class names given: pass e.g. --classes '
                             '"cat,sky"')
            names = resolve_class_names(names)
    except (FileNotFoundError, ValueError) as err:
        parser_error(str(err).replace('the class list', '--classes'))
    if len(names) < 2:
        parser_error(f'give at least two class names (each pixel takes the '
                     f'most similar one), got {names}; add e.g. "background"')
    return names


def list_images(path: str) -> List[str]:
    return sorted(
        osp.join(path, f) for f in os.listdir(path)
        if f.lower().endswith(IMAGE_EXTENSIONS))


def make_palette(num: int) -> List[List[int]]:
    """Distinct, deterministic colours: hues spread by the golden ratio."""
    colors = []
    for i in range(num):
        hue = (i * 0.618033988749895) % 1.0
        r, g, b = colorsys.hsv_to_rgb(hue, 0.75, 0.95)
        colors.append([int(r * 255), int(g * 255), int(b * 255)])
    return colors


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


def draw_legend(visualizer: SegLocalVisualizer, image: np.ndarray,
                names: Sequence[str], shares: Sequence[float],
                palette: Sequence[Sequence[int]], font) -> np.ndarray:
    """Overlay a legend (colour swatch, name, share of pixels) top left."""
    h, w = image.shape[:2]
    size = max(8, min(h, w) // 28)  # text height in pixels
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
    with warnings.catch_warnings():  # font_for() already warned, once
        warnings.filterwarnings('ignore', r'Glyph \d+ .* missing from font')
        visualizer.draw_texts(
            texts, np.array(positions), font_sizes=int(size * 0.8),
            colors='white', vertical_alignments='center',
            font_properties=font)
        return visualizer.get_image()


def build_model(args, names: List[str]):
    clip_file = find_clip_file(args.clip)
    print(describe(clip_file))
    cfg = maskclip_model_cfg(
        clip_file, names, ks_thresh=args.ks, pd_thresh=args.pd,
        templates=args.templates,
        text_encoder=({'transformer_heads': args.text_heads}
                      if args.text_heads else None),
        text_cache_dir=args.cache_dir)
    register_all_modules(init_default_scope=True)
    model = MODELS.build(cfg)
    model.cfg = Config(dict(test_pipeline=[
        dict(type='LoadImageFromFile'),
        dict(type='Resize', scale=tuple(args.scale), keep_ratio=True),
        dict(type='PackSegInputs'),
    ]))
    model = model.to(args.device).eval()
    # read the CLIP file and encode the names now, so that a bad name fails
    # here, before any image
    model.backbone.init_weights()
    model.decode_head.load_weights()
    return model


def predict_labels(model, image: np.ndarray,
                   chunk: int = CLASS_CHUNK) -> torch.Tensor:
    """The class of every pixel of ``image`` ``[H, W]``, as mmseg's
    ``inference_model`` computes it, with memory bounded in the classes.

    ``inference_model`` holds the logits of every class at the input's and
    again at the original resolution: with 1,000 class names and a
    2048x512 input, several 4 GB tensors. Here the head's output stays at
    feature resolution and is brought to the image's size ``chunk`` classes
    at a time by mmseg's own ``predict_by_feat`` and ``postprocess_result``
    (resize, padding removed, resize to the original size), keeping the
    running maximum: the same labels (ties go to the lower class index, as
    in ``argmax``) with ``chunk`` classes' worth of full-size logits.
    """
    data, _ = _preprare_data(image, model)  # mmseg's inference pipeline
    data = model.data_preprocessor(data, False)
    meta = data['data_samples'][0].metainfo
    with torch.no_grad():
        logits = model.decode_head.forward(model.extract_feat(data['inputs']))
        num = logits.shape[1]
        # a 1-class chunk would take mmseg's binary (sigmoid) path
        starts = list(range(0, num, max(chunk, 2)))
        if len(starts) > 1 and num - starts[-1] == 1:
            starts.pop()
        best = labels = None
        for i, start in enumerate(starts):
            end = starts[i + 1] if i + 1 < len(starts) else num
            part = model.decode_head.predict_by_feat(logits[:, start:end],
                                                     [meta])
            sample = model.postprocess_result(
                part, [SegDataSample(metainfo=meta)])[0]
            value, index = sample.seg_logits.data.max(dim=0)
            if best is None:
                best, labels = value, index
            else:
                better = value > best
                best = torch.where(better, value, best)
                labels = torch.where(better, index + start, labels)
    return labels


def write_image_atomic(image: np.ndarray, out_file: str) -> None:
    """Encode ``image`` and move it into place: a killed run leaves no
    half-written output."""
    ok, encoded = cv2.imencode(osp.splitext(out_file)[1] or '.png', image)
    if not ok:
        raise OSError(f'cannot encode {out_file}: use a .png or .jpg name')
    write_bytes_atomic(out_file, encoded.tobytes())


def legend_entries(names: Sequence[str], shares: Sequence[float],
                   palette, max_rows: int = LEGEND_ROWS):
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


def segment(model, visualizer: SegLocalVisualizer, image_path: str,
            out_file: str, names: List[str], palette, font) -> None:
    image = mmcv.imread(image_path)  # BGR, as mmseg's pipelines load it
    if image is None:
        raise OSError(f'cannot read image {image_path}: not an image file '
                      f'(or an unsupported format)')
    labels = predict_labels(model, image)
    result = SegDataSample()
    result.pred_sem_seg = PixelData(data=labels[None])
    labels = labels.cpu().numpy()
    counts = np.bincount(labels.ravel(), minlength=len(names))
    shares = counts / max(labels.size, 1)
    rgb = mmcv.bgr2rgb(image)
    visualizer.add_datasample(
        osp.basename(image_path), rgb, result, draw_gt=False,
        draw_pred=True, show=False, with_labels=False)
    drawn = draw_legend(visualizer, visualizer.get_image(),
                        *legend_entries(names, shares, palette), font)
    write_image_atomic(mmcv.rgb2bgr(drawn), out_file)
    present = ', '.join(f'{n} {s:.0%}' for n, s in zip(names, shares) if s)
    print(f'{image_path} -> {out_file} ({present})')


def main(argv=None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    parser_error = parser.error
    names = parse_class_names(args, parser_error)
    if osp.isdir(args.input):
        images = list_images(args.input)
        if not images:
            parser_error(f'{args.input} holds no images '
                         f'({", ".join(IMAGE_EXTENSIONS)})')
        if osp.splitext(args.out)[1]:
            parser_error(f'--out {args.out} must be a folder when the input '
                         f'is a folder')
        outs = [osp.join(args.out, osp.splitext(osp.basename(p))[0] + '.png')
                for p in images]
    elif osp.isfile(args.input):
        images = [args.input]
        out = args.out
        if osp.isdir(out) or out.endswith(('/', os.sep)):
            out = osp.join(out, osp.splitext(osp.basename(args.input))[0] +
                           '.png')
        outs = [out]
    else:
        parser_error(f'input {args.input} does not exist')
    if len(images) == 1 and mmcv.imread(images[0]) is None:
        # fail before the model is built
        print(f'maskclip_demo: cannot read image {images[0]}: not an image '
              f'file (or an unsupported format)', file=sys.stderr)
        return 1
    try:
        model = build_model(args, names)
    except (FileNotFoundError, ValueError) as err:
        parser_error(str(err))
    palette = make_palette(len(names))
    visualizer = SegLocalVisualizer(
        name=f'maskclip_demo_{next(_visualizer_ids)}', alpha=args.opacity)
    visualizer.dataset_meta = dict(classes=names, palette=palette)
    font = font_for(names)
    failed = []
    for image_path, out_file in zip(images, outs):
        try:
            segment(model, visualizer, image_path, out_file, names, palette,
                    font)
        except OSError as err:
            print(f'maskclip_demo: {err}', file=sys.stderr)
            failed.append(image_path)
    if failed:
        print(f'maskclip_demo: {len(failed)} of {len(images)} image(s) could '
              f'not be read: {", ".join(failed)}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
