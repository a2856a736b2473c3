"""Open-vocabulary segmentation of your own images with MaskCLIP, SCLIP,
ClearCLIP, NACLIP, SC-CLIP or ProxyCLIP: any class names, synonyms with ``|``.

    python tools/maskclip_demo.py IMAGE --classes "sky|cloud,Batman,building" \\
        --clip pretrained/ViT-B-16.pt --out result.png [--method naclip|scclip] [--pamr]
    python tools/maskclip_demo.py IMAGE --classes ... --out result.png \\
        --method proxyclip --vfm dino_vitb8
    python tools/maskclip_demo.py FOLDER --classes-file names.txt --out FOLDER_OUT

Writes each image with the predicted classes painted over it and a legend
of the classes present, inside the image or, for a small one, beside it
(a folder: every image under it, sub-folders included, as
``tools/maskclip_plus_folder.py`` reads one; FOLDER_OUT mirrors them).
The model is built from the CLIP file alone (``maskclip_model_cfg``, each
method's published settings); labels are the segmentor's own inference.
Options, memory and exit status: docs/maskclip.md ("Quick start").
"""
import argparse
import os
import os.path as osp
import sys
from typing import List

import cv2
import numpy as np
import torch
from mmseg.apis import inference_model

import denseclip  # noqa: F401  (registers the modules)
from denseclip.apis import (DEFAULT_METHOD, METHODS,
                            default_method, parse_classes, resolve_clip,
                            training_free_model)
from denseclip.clip.arch import ClipArch, read_clip_arch
from denseclip.clip.class_names import ClassNames
from denseclip.datasets.image_folder import (IMAGE_EXTENSIONS,
                                             UnreadableImageError,
                                             list_images, read_image)
from denseclip.utils import write_bytes_atomic
from denseclip.visualization import (draw_legend, font_for, format_share,
                                     legend_entries, overlay_labels)
from denseclip.visualization import make_palette  # noqa: F401 (tests)


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description='Training-free open-vocabulary segmentation demo '
        '(MaskCLIP, SCLIP, ClearCLIP, NACLIP)')
    parser.add_argument('input', help='an image, or a folder of images '
                        '(sub-folders included)')
    names = parser.add_mutually_exclusive_group(required=True)
    names.add_argument('--classes',
                       help='class names separated by commas; synonyms of '
                       'one class separated by "|" (the class scores the '
                       'best of them): "sky|cloud,red car|automobile,tree"')
    names.add_argument('--classes-file',
                       help='a text file, one class per line, synonyms '
                       'separated by commas (configs/ovss/class_names/)')
    parser.add_argument('--clip', default='pretrained/ViT-B-16.pt',
                        help='CLIP: a file, a name of tools/download_clip.py --list '
                        '(ViT-B-16, ViT-B-16/metaclip_fullcc) or hf-hub:ORG/REPO')
    parser.add_argument('--out', required=True,
                        help='output PNG (for an image) or folder')
    parser.add_argument('--method', choices=sorted(METHODS),
                        help=f'default: {DEFAULT_METHOD} for a CLIP ViT, '
                        'maskclip for a ResNet (the successors change a '
                        "ViT's last block)")
    parser.add_argument('--vfm',
                        help='the vision foundation model of --method '
                        'proxyclip: a file or a name of tools/download_vfm.py '
                        '--list (dino_vitb8, dino_vitb16, dinov2_vitb14_reg)')
    parser.add_argument('--pamr', action='store_true',
                        help='refine with PAMR (10 iterations, dilations 8 '
                        "and 16, NACLIP's)")
    parser.add_argument('--prob-thd', type=float, default=0.,
                        help='pixels whose top class probability is below '
                        'it take the first class (a background line)')
    parser.add_argument('--logit-scale', type=float,
                        help="softmax temperature for --prob-thd (default: "
                        "the method's)")
    parser.add_argument('--inference', choices=('whole', 'slide'),
                        help="whole image or slide windows (default: the "
                        "method's)")
    parser.add_argument('--ks', type=float, nargs='?', const=1.0, default=0.,
                        help='key smoothing (threshold, default 1.0)')
    parser.add_argument('--pd', type=float, nargs='?', const=0.5, default=0.,
                        help='prompt denoising (threshold, default 0.5)')
    parser.add_argument('--templates',
                        help="prompt templates: 'imagenet85', 'imagenet80' "
                        "(default: the method's) or 'single' (faster start)")
    parser.add_argument('--scale', type=int, nargs=2,
                        metavar=('LONG', 'SHORT'),
                        help='resize to fit in LONG x SHORT (keep ratio); '
                        "default 2048 x the method's short side")
    parser.add_argument('--opacity', type=float, default=0.5)
    parser.add_argument('--text-heads', type=int,
                        help='text tower heads, for a state dict (.pth) of a '
                        'model whose heads are not width // 64; a '
                        'TorchScript file (.pt) records its own, and '
                        'another count is an error')
    parser.add_argument('--vision-heads', type=int,
                        help='ViT image tower heads, as --text-heads (the '
                        'toy ViT CLIP has 4, not 128 // 64)')
    parser.add_argument('--cache-dir', help='text embedding cache directory')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--verbose', action='store_true',
                        help='also print third-party warnings')
    return parser


def parse_class_names(args, parser_error) -> ClassNames:
    """Class names (at least two) from ``--classes`` (commas between
    classes, ``|`` between synonyms) or ``--classes-file`` (a class per
    line, synonyms separated by commas); errors name the line or class."""
    if args.classes_file is not None:
        spec = args.classes_file
    else:  # always a list here: "ade" is a class, not ADE20K's 150
        spec = [entry for entry in args.classes.split(',') if entry.strip()]
        if not spec:
            parser_error('no class names given: pass e.g. --classes '
                         '"cat,sky"')
    try:
        names = parse_classes(spec)
    except (FileNotFoundError, ValueError) as err:
        parser_error(str(err).replace('the class list', '--classes'))
    if names.num_classes < 2:
        parser_error(f'give at least two class names (each pixel takes the '
                     f'most similar one), got {names.names}; add e.g. '
                     f'"background"')
    return names


def _inside(path: str, folder: str) -> bool:
    path, folder = osp.realpath(path), osp.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def folder_images(folder: str, out_dir: str) -> List[str]:
    """The images under ``folder``, sub-folders included (``list_images``,
    as the folder tool reads them), less those under ``out_dir`` (an
    earlier run's output is not input)."""
    return [p for p in list_images(folder) if not _inside(p, out_dir)]


def choose_method(args, arch: ClipArch) -> str:
    """``--method``, else NACLIP on a CLIP ViT and MaskCLIP on a ResNet."""
    return args.method or default_method(arch)


def build_model(args, names):
    """The demo's model: ``denseclip.apis.training_free_model`` with the
    options of ``args``, after a header line naming the CLIP's
    architecture and one naming the method, inference and resize."""
    clip_file = resolve_clip(args.clip)
    # the head counts: the file's where it records them (a mismatch with
    # --vision-heads / --text-heads is an error), said in the header line
    arch = read_clip_arch(clip_file, args.vision_heads, args.text_heads,
                          ('--vision-heads', '--text-heads'))
    print(arch.describe())
    model = training_free_model(
        clip_file, names, choose_method(args, arch), args.device,
        pamr=args.pamr, prob_thd=args.prob_thd,
        logit_scale=args.logit_scale, inference=args.inference,
        scale=tuple(args.scale) if args.scale else None,
        templates=args.templates, ks_thresh=args.ks, pd_thresh=args.pd,
        text_heads=args.text_heads, vision_heads=args.vision_heads,
        text_cache_dir=args.cache_dir, vfm=args.vfm, verbose=args.verbose)
    long_side, short_side = model.cfg.test_pipeline[1]['scale']
    print(f'{model.cfg.method}: {model.test_cfg.mode} inference, images fit '
          f'in {long_side}x{short_side}{", PAMR" if args.pamr else ""}')
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
    """Label ``image_path``, paint the labels and a legend of the classes
    present (``names``: each class's label) over it, and write ``out_file``
    (the image's size; wider by a legend panel where a legend inside would
    cover more than an eighth of it: ``draw_legend``)."""
    image = read_image(image_path)  # BGR, as mmseg's pipelines load it
    labels = predict_labels(model, image).cpu().numpy()
    counts = np.bincount(labels.ravel(), minlength=len(names))
    shares = counts / max(labels.size, 1)
    drawn = overlay_labels(image, labels, [c[::-1] for c in palette],
                           opacity)
    del labels
    drawn = draw_legend(drawn, *legend_entries(names, shares, palette), font,
                        bgr=True)
    write_image_atomic(drawn, out_file)
    present = ', '.join(f'{n} {format_share(s)}'
                        for n, s in zip(names, shares) if s)
    print(f'{image_path} -> {out_file} ({present})')


def main(argv=None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    parser_error = parser.error
    names = parse_class_names(args, parser_error)
    if osp.isdir(args.input):
        if osp.splitext(args.out)[1]:
            parser_error(f'--out {args.out} must be a folder when the input '
                         f'is a folder')
        images = folder_images(args.input, args.out)
        if not images:
            parser_error(f'{args.input} holds no images '
                         f'({", ".join(IMAGE_EXTENSIONS)}, in any case, '
                         f'sub-folders included)')
        outs = [osp.join(args.out, osp.splitext(osp.relpath(
            p, args.input))[0] + '.png') for p in images]
    elif osp.isfile(args.input):
        images = [args.input]
        out = args.out
        if osp.isdir(out) or out.endswith(('/', os.sep)):
            out = osp.join(out, osp.splitext(osp.basename(args.input))[0] +
                           '.png')
        outs = [out]
    else:
        parser_error(f'input {args.input} does not exist')
    if len(images) == 1:
        try:  # fail before the model is built
            read_image(images[0])
        except UnreadableImageError as err:
            print(f'maskclip_demo: {err}', file=sys.stderr)
            return 1
    try:  # training_free_model hides mmseg's build warnings unless verbose
        model = build_model(args, names)
    except (FileNotFoundError, ValueError) as err:
        parser_error(str(err))
    labels = list(model.dataset_meta['classes'])
    palette = model.dataset_meta['palette']
    font = font_for(labels)
    failed = []
    for image_path, out_file in zip(images, outs):
        try:
            segment(model, image_path, out_file, labels, palette,
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
