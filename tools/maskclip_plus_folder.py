"""MaskCLIP+ on a folder of your own images: no annotations, any class names.

    python tools/maskclip_plus_folder.py IMAGES \\
        --classes "Batman,Joker,building,sky" --clip pretrained/ViT-B-16.pt \\
        [--iters 300] [--work-dir DIR] [--out DIR]
    ... [--classes-file names.txt] [--config CONFIG] [--templates single]
        [--text-heads N] [--device cuda] [--cfg-options KEY=VALUE ...]

1. Builds a training config from CONFIG (default: the reference's web-image
   recipe, ``configs/maskclip_plus/web_image/
   maskclip_plus_vit16_deeplabv2_r101_512x512_300_web_image.py``): every
   image under IMAGES (``ImageFolderDataset``; each gets a map that is
   unlabeled everywhere, ``UnlabeledSegMap``), the class names, and a
   frozen MaskCLIP teacher on the CLIP file (ResNet or ViT, read from the
   file). It is written to ``WORK_DIR/maskclip_plus_folder.py``.
2. Trains the student on the teacher's pseudo labels through
   ``tools/train.py`` (mmengine's Runner, in a fresh interpreter), printing
   its progress lines; the checkpoint is ``WORK_DIR/train/iter_<N>.pth``.
3. Paints every image of IMAGES with the student's predictions, the class
   colours and legend of ``tools/maskclip_demo.py``
   (``denseclip.visualization``), as ``OUT/<name>.png`` of the image's size,
   or wider by a legend panel where a legend inside would cover more than
   an eighth of it (OUT defaults to ``WORK_DIR/painted``).

Images that cannot be read (truncated, empty, not an image) are skipped,
left out of training (the dataset's ``exclude``) and listed with the reason
in the summary. Every file is written under a temporary name and renamed
when complete. Exit status: 0 on success (images skipped or not), 2 for bad
arguments (no folder, one without images or without a readable one, fewer
than two class names, a missing CLIP or config file), 1 if training fails
or an image read before training cannot be painted (the others are still
written).
"""
import argparse
import os
import os.path as osp
import re
import sys
import time
import warnings
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)  # run from a checkout without an install too

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402

from denseclip.datasets.image_folder import (IMAGE_EXTENSIONS,  # noqa: E402
                                             list_images, read_image,
                                             why_unreadable)
from denseclip.utils import write_bytes_atomic, write_text_atomic  # noqa: E402
from denseclip.utils.tool_process import (ToolFailed,  # noqa: E402
                                          run_tool_process)
from denseclip.visualization import (draw_legend, font_for,  # noqa: E402
                                     format_share, legend_entries,
                                     make_palette, overlay_labels)

CONFIG = osp.join(
    REPO, 'configs', 'maskclip_plus', 'web_image',
    'maskclip_plus_vit16_deeplabv2_r101_512x512_300_web_image.py')
CONFIG_NAME = 'maskclip_plus_folder.py'

# training log lines shown (all with --verbose; the full log is in WORK_DIR)
_SHOW = re.compile(r'Iter\(train\)|Saving checkpoint|self-training from|'
                   r'^Traceback|^\w+(Error|Exception)\b')


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description='MaskCLIP+ on a folder of images without annotations: '
        'train a student on MaskCLIP pseudo labels, paint the folder')
    parser.add_argument('images', help='a folder of images (sub-folders '
                        'included; images that cannot be read are skipped '
                        'and listed); no annotation files are read')
    names = parser.add_mutually_exclusive_group(required=True)
    names.add_argument('--classes', help='class names separated by commas')
    names.add_argument('--classes-file',
                       help='a text file with one class name per line')
    parser.add_argument('--clip', default='pretrained/ViT-B-16.pt',
                        help='CLIP, the teacher: a file, a name of '
                        'tools/download_clip.py --list or hf-hub:ORG/REPO '
                        '(default: pretrained/ViT-B-16.pt)')
    parser.add_argument('--iters', type=int,
                        help="training iterations (default: the config's, "
                        '300); the schedule is scaled to them')
    parser.add_argument('--work-dir',
                        help='config, checkpoint and logs (default: '
                        'work_dirs/maskclip_plus_folder/<IMAGES name>)')
    parser.add_argument('--out', help='folder of the painted images '
                        '(default: WORK_DIR/painted)')
    parser.add_argument('--config', default=CONFIG,
                        help='the recipe (default: configs/maskclip_plus/'
                        'web_image/..._r101_512x512_300_web_image.py)')
    parser.add_argument('--templates',
                        help="the teacher's prompt templates: 'imagenet85' "
                        "(the paper's, the configs' default) or 'single'")
    parser.add_argument('--text-heads', type=int,
                        help='text tower heads, for a state dict of a model '
                        'whose heads are not width // 64 (a TorchScript file '
                        'records its own; another count is an error)')
    parser.add_argument('--opacity', type=float, default=0.5)
    parser.add_argument('--device',
                        help='device for painting (default: cuda if '
                        'available, else cpu; training uses the runner\'s)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        default={}, help='override settings of the built '
                        'config, e.g. train_dataloader.batch_size=2')
    parser.add_argument('--verbose', action='store_true',
                        help='print the whole training log')
    return parser


# -------------------------------------------------------------- arguments
def parse_class_names(args, error) -> List[str]:
    """At least two class names from ``--classes`` or ``--classes-file``."""
    from denseclip.clip.prompt_class_names import (read_class_name_file,
                                                   resolve_class_names)
    try:
        if args.classes_file is not None:
            names = read_class_name_file(args.classes_file)
        else:
            names = [n.strip() for n in args.classes.split(',') if n.strip()]
            if not names:
                error('no class names given: pass e.g. --classes "cat,sky"')
            names = resolve_class_names(names)
    except (FileNotFoundError, ValueError) as err:
        error(str(err).replace('the class list', '--classes'))
    if len(names) < 2:
        error(f'give at least two class names (each pixel takes the most '
              f'similar one), got {names}; add e.g. "background"')
    return names


def _inside(path: str, folder: str) -> bool:
    path, folder = osp.realpath(path), osp.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


@dataclass
class Plan:
    """What a run reads and writes, checked before anything is."""
    images: List[str]  # the readable ones
    names: List[str]
    clip_file: str
    work_dir: str
    out_dir: str
    # (image, why it cannot be read): left out of training and painting
    skipped: List[Tuple[str, str]]


def check_arguments(args, error) -> Plan:
    """Everything that can be wrong with the arguments, found before any
    work: each is a clear message through ``error`` (exit status 2)."""
    folder = args.images
    if not osp.exists(folder):
        error(f'image folder {folder} does not exist')
    if not osp.isdir(folder):
        error(f'{folder} is not a folder: give a folder of images (for one '
              'image, put it in a folder)')
    images = list_images(folder)
    if not images:
        error(f'{folder} holds no images ({", ".join(IMAGE_EXTENSIONS)}, in '
              'any case, sub-folders included)')
    names = parse_class_names(args, error)
    if args.iters is not None and args.iters < 1:
        error(f'--iters must be at least 1, got {args.iters}')
    if not osp.isfile(args.config):
        error(f'config file {args.config} does not exist')
    from denseclip.clip.files import find_clip_file
    try:
        clip_file = find_clip_file(args.clip)
    except (FileNotFoundError, ValueError) as err:
        error(str(err))
    work_dir = args.work_dir or osp.join(
        'work_dirs', 'maskclip_plus_folder',
        osp.basename(osp.normpath(osp.abspath(folder))))
    out_dir = args.out or osp.join(work_dir, 'painted')
    for option, path in (('--work-dir', work_dir), ('--out', out_dir)):
        if _inside(path, folder):
            error(f'{option} {path} lies inside the image folder {folder}: '
                  'its files would be read as training images next time; '
                  'choose a folder outside it')
    if osp.isfile(out_dir):
        error(f'--out {out_dir} is a file; give a folder')
    # last, as it reads every image: a scraped folder usually holds a few
    # that cannot be read (truncated downloads ...): those are skipped
    skipped = [(p, reason) for p in images
               if (reason := why_unreadable(p)) is not None]
    if len(skipped) == len(images):
        error(f'none of the {len(images)} image(s) of {folder} can be read: '
              + '; '.join(f'{p}: {r}' for p, r in skipped[:5])
              + (' ...' if len(skipped) > 5 else ''))
    left_out = {p for p, _ in skipped}
    return Plan([p for p in images if p not in left_out], names,
                osp.abspath(clip_file), osp.abspath(work_dir),
                osp.abspath(out_dir), skipped)


# ----------------------------------------------------------------- config
def scale_schedule(cfg: Config, iters: int) -> None:
    """Give the config's schedule ``iters`` iterations, its shape kept:
    the schedulers' ``begin`` / ``end`` and ``model.self_train_from`` are
    scaled, the checkpoint is saved at the end."""
    base = int(cfg.train_cfg.max_iters)

    def at(i: int) -> int:
        return min(iters, int(round(i * iters / base)))

    for sched in cfg.get('param_scheduler') or []:
        begin = at(sched.get('begin', 0))
        end = at(sched.get('end', base))
        sched.update(begin=begin, end=max(end, begin + 1))
    start = cfg.model.get('self_train_from', -1)
    if start is not None and start >= 0:
        cfg.model.self_train_from = max(1, at(start))
    cfg.train_cfg.update(max_iters=iters, val_interval=iters)
    if 'iters' in cfg:  # the configs' own record of their length
        cfg.iters = iters
    cfg.default_hooks.checkpoint.interval = iters
    logger = cfg.default_hooks.get('logger')
    if logger is not None:
        logger.interval = max(1, min(logger.get('interval', 10), iters))


def build_config(args, plan: Plan) -> Config:
    """The recipe of ``--config`` filled in: the folder, the class names and
    MaskCLIP on the CLIP file as the teacher."""
    from denseclip.apis import maskclip_model_cfg
    cfg = Config.fromfile(args.config)
    options = dict(cfg.get('teacher_options') or {})
    if args.templates:
        options['templates'] = args.templates
    if args.text_heads:
        options['text_encoder'] = dict(transformer_heads=args.text_heads)
    teacher = maskclip_model_cfg(plan.clip_file, plan.names, **options)
    text_channels = teacher.decode_head.text_channels
    folder = osp.abspath(args.images)
    cfg.image_folder = folder
    cfg.class_names = list(plan.names)
    cfg.clip_file = plan.clip_file
    cfg.teacher_options = options
    cfg.model.teacher = teacher
    cfg.model.decode_head.update(num_classes=len(plan.names),
                                 channels=text_channels,
                                 text_channels=text_channels)
    dataset = cfg.train_dataloader.dataset
    dataset.data_prefix = dict(img_path=folder)
    # the unreadable images stay out of training (and are named there)
    dataset.exclude = [osp.relpath(osp.abspath(p), folder)
                       for p, _ in plan.skipped]
    dataset.metainfo = dict(classes=list(plan.names),
                            palette=make_palette(len(plan.names)))
    if args.iters is not None:
        scale_schedule(cfg, args.iters)
    cfg.merge_from_dict(args.cfg_options)
    cfg.work_dir = osp.join(plan.work_dir, 'train')
    return cfg


def teacher_clip(cfg: Config):
    """The teacher's CLIP file and where its head counts came from (the
    file, the recipe's ``teacher_options`` or ``--text-heads``, or OpenAI's
    rule): ``read_clip_arch`` as ``maskclip_model_cfg`` ran it."""
    from denseclip.clip.arch import read_clip_arch
    options = cfg.get('teacher_options') or {}
    return read_clip_arch(
        cfg.clip_file, options.get('vision_heads'),
        (options.get('text_encoder') or {}).get('transformer_heads'),
        ('teacher_options.vision_heads', '--text-heads'))


# --------------------------------------------------------------- training
def train(config_file: str, work_dir: str, verbose: bool) -> str:
    """Train ``config_file`` through ``tools/train.py`` in a fresh
    interpreter, streaming its progress lines; return the checkpoint."""
    try:
        run_tool_process(REPO, 'train.py', [config_file, '--work-dir',
                                            work_dir], _SHOW, verbose)
    except ToolFailed as err:
        raise RuntimeError(f'training failed: {err}, the log is in '
                           f'{work_dir}') from err
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


# --------------------------------------------------------------- painting
def load_student(cfg: Config, checkpoint: str, device: str):
    """The trained MaskCLIP+ model for inference (the student; its teacher
    is built but never loaded: testing needs no teacher)."""
    from mmengine.model import revert_sync_batchnorm
    from mmengine.runner import load_checkpoint
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    with warnings.catch_warnings():  # mmseg's loss-builder deprecation notes
        warnings.simplefilter('ignore', UserWarning)
        model = revert_sync_batchnorm(MODELS.build(cfg.model))
    load_checkpoint(model, checkpoint, map_location='cpu', strict=True,
                    logger='silent')
    model.cfg = Config(dict(test_pipeline=cfg.test_pipeline))
    return model.to(device).eval()


def paint(model, image_path: str, out_file: str, names: Sequence[str],
          palette, opacity: float, font) -> str:
    """Label ``image_path`` with ``model``, paint the labels and the legend
    over it (as ``tools/maskclip_demo.py`` does) and write ``out_file`` of
    the image's size (wider by a legend panel for a small image); return a
    line saying what it holds."""
    from mmseg.apis import inference_model
    image = read_image(image_path)  # BGR, as mmseg's pipelines load it
    with torch.no_grad():
        labels = inference_model(model, image).pred_sem_seg.data[0]
    labels = labels.cpu().numpy()
    shares = np.bincount(labels.ravel(), minlength=len(names)) / max(
        labels.size, 1)
    drawn = overlay_labels(image, labels, [c[::-1] for c in palette],
                           opacity)
    drawn = draw_legend(drawn, *legend_entries(names, shares, palette), font,
                        bgr=True)
    ok, encoded = cv2.imencode('.png', drawn)
    if not ok:
        raise OSError(f'cannot encode {out_file}')
    write_bytes_atomic(out_file, memoryview(encoded))
    present = ', '.join(f'{n} {format_share(s)}'
                        for n, s in zip(names, shares) if s)
    return f'{image_path} -> {out_file} ({present})'


@dataclass
class Result:
    """What a run wrote."""
    config: str
    checkpoint: str
    painted: List[str]
    failed: List[str]
    wall_s: float
    # (image, why it cannot be read): skipped from the start
    skipped: List[Tuple[str, str]]


def run(argv: Optional[Sequence[str]] = None) -> Result:
    parser = make_parser()
    args = parser.parse_args(argv)
    start = time.time()
    plan = check_arguments(args, parser.error)
    try:
        cfg = build_config(args, plan)
    except (FileNotFoundError, ValueError) as err:
        parser.error(str(err))
    iters = cfg.train_cfg.max_iters
    skipped = (f' ({len(plan.skipped)} unreadable skipped, listed at the '
               f'end)' if plan.skipped else '')
    print(f'[1/3] {len(plan.images)} images in {args.images}{skipped}, '
          f'{len(plan.names)} classes ({", ".join(plan.names)}), teacher '
          f'MaskCLIP on {plan.clip_file}')
    config_file = osp.join(plan.work_dir, CONFIG_NAME)
    write_text_atomic(config_file, cfg.pretty_text)
    print(f'      CLIP:   {teacher_clip(cfg).describe()}')
    print(f'      config: {config_file}')

    print(f'[2/3] training the student for {iters} iterations on the '
          "teacher's pseudo labels")
    try:
        checkpoint = train(config_file, cfg.work_dir, args.verbose)
    except RuntimeError as err:
        print(f'maskclip_plus_folder: {err}', file=sys.stderr)
        raise SystemExit(1)
    t_train = time.time()

    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    print(f'[3/3] painting {len(plan.images)} images with the student '
          f'({device}) into {plan.out_dir}')
    model = load_student(cfg, checkpoint, device)
    palette = make_palette(len(plan.names))
    font = font_for(plan.names)
    painted, failed = [], []
    folder = osp.abspath(args.images)
    for image_path in plan.images:
        rel = osp.relpath(osp.abspath(image_path), folder)
        out_file = osp.join(plan.out_dir, osp.splitext(rel)[0] + '.png')
        try:
            print('  ' + paint(model, image_path, out_file, plan.names,
                               palette, args.opacity, font), flush=True)
            painted.append(out_file)
        except OSError as err:
            print(f'maskclip_plus_folder: {err}', file=sys.stderr)
            failed.append(image_path)
    end = time.time()
    print(f'checkpoint: {checkpoint}\npainted:    {len(painted)} images in '
          f'{plan.out_dir}')
    if plan.skipped:
        print(f'skipped:    {len(plan.skipped)} unreadable image(s), not '
              'trained on or painted:')
        for path, reason in plan.skipped:
            print(f'  {path}: {reason}')
    print(f'wall time:  {end - start:.0f} s (training '
          f'{t_train - start:.0f} s, painting {end - t_train:.0f} s)')
    if failed:
        print(f'maskclip_plus_folder: {len(failed)} of {len(plan.images)} '
              f'image(s) could not be painted: {", ".join(failed)}',
              file=sys.stderr)
    return Result(config_file, checkpoint, painted, failed, end - start,
                  plan.skipped)


def main(argv: Optional[Sequence[str]] = None) -> int:
    return 1 if run(argv).failed else 0


if __name__ == '__main__':
    sys.exit(main())
