"""Open-vocabulary segmentation of your own images with MaskCLIP: any class names.

    python tools/maskclip_demo.py IMAGE --classes "Batman,Joker,building,sky" \\
        --clip pretrained/ViT-B-16.pt --out result.png
    python tools/maskclip_demo.py FOLDER --classes-file names.txt --out FOLDER_OUT
    ... [--ks [THRESH]] [--pd [THRESH]] [--templates single] [--device cuda]

Writes each image overlaid with the predicted classes' colours and a legend
(every class, with its share of the image; with more than 30 names, the
classes present), as a PNG of the input's size. Any image OpenCV reads:
grayscale and 16-bit images are converted to 8-bit colour, an alpha channel
is dropped. The labels are the segmentor's own inference
(``mmseg.apis.inference_model`` on a ``TrainingFreeSegmentor``). Memory
does not grow with the class names (1,000 and more work) and grows by about
20 bytes per photo pixel (1.4 GB in all for 8000x6000): text embeddings are
computed a few classes at a time, logits reach the photo's size a chunk of
classes at a time, and the painting needs no full-size matplotlib figure
(docs/bad_data.md). An output is written under
a temporary name and renamed, so an interrupted run leaves no partial file.
The model is built from the CLIP file alone
(ResNet or ViT and their widths are read from its tensors); class names are
free text (phrases, any script); their text embeddings are computed once and
cached (``~/.cache/denseclip``). ``--ks`` / ``--pd`` switch on key smoothing /
prompt denoising (thresholds 1.0 / 0.5, the reference's, unless given).

Exit status: 0 on success, 2 for bad arguments (no class names, missing CLIP
file or input), 1 if an image cannot be read (the others are still written).
"""
import argparse
import os
import os.path as osp
import sys
from typing import List

import cv2
import mmcv
import numpy as np
import torch
from mmengine.config import Config
from mmseg.apis import inference_model
from mmseg.registry import MODELS
from mmseg.utils import register_all_modules

import denseclip  # noqa: F401  (registers the modules)
from denseclip.apis import maskclip_model_cfg
from denseclip.clip_files import find_clip_file
from denseclip.models.clip_arch import describe
from denseclip.models.text.prompt_class_names import (read_class_name_file,
                                                      resolve_class_names)
from denseclip.utils import write_bytes_atomic
from denseclip.visualization import (draw_legend, font_for, legend_entries,
                                     make_palette, overlay_labels)

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


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


def predict_labels(model, image: np.ndarray) -> torch.Tensor:
    """The class of every pixel of ``image`` (BGR) ``[H, W]``: the
    segmentor's own inference (``inference_model``: its test pipeline,
    ``test_step`` and post-processing, chunked in the classes)."""
    return inference_model(model, image).pred_sem_seg.data[0]


def write_image_atomic(image: np.ndarray, out_file: str) -> None:
    """Encode ``image`` and move it into place: a killed run leaves no
    half-written output."""
    ok, encoded = cv2.imencode(osp.splitext(out_file)[1] or '.png', image)
    if not ok:
        raise OSError(f'cannot encode {out_file}: use a .png or .jpg name')
    write_bytes_atomic(out_file, memoryview(encoded))


def segment(model, image_path: str, out_file: str, names: List[str],
            palette, opacity: float, font) -> None:
    """Label ``image_path``, paint the labels and a legend over it, and
    write ``out_file`` (the image's size)."""
    image = mmcv.imread(image_path)  # BGR, as mmseg's pipelines load it
    if image is None:
        raise OSError(f'cannot read image {image_path}: not an image file '
                      f'(or an unsupported format)')
    labels = predict_labels(model, image).cpu().numpy()
    counts = np.bincount(labels.ravel(), minlength=len(names))
    shares = counts / max(labels.size, 1)
    drawn = overlay_labels(image, labels, [c[::-1] for c in palette],
                           opacity)
    del labels
    draw_legend(drawn, *legend_entries(names, shares, palette), font,
                bgr=True)
    write_image_atomic(drawn, out_file)
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
    font = font_for(names)
    failed = []
    for image_path, out_file in zip(images, outs):
        try:
            segment(model, image_path, out_file, names, palette,
                    args.opacity, font)
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
