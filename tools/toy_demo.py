"""The toy demos: DenseCLIP, MaskCLIP, MaskCLIP+ end to end on a CPU in minutes.

    python tools/toy_demo.py [--config CONFIG] [--work-dir work_dirs/toy]
                             [--iters N] [--fast] [--tta] [--data-seed N]
                             [--verbose]

1. Writes the toy files under ``WORK_DIR`` (files already there from an
   earlier run with the same settings are reused): a synthetic dataset of
   coloured shapes in ADE20K's folder layout (``denseclip.toy.data``), and a
   tiny CLIP in OpenAI's TorchScript format: for DenseCLIP
   (``configs/toy/denseclip_toy.py``, the default) one with random weights
   (``denseclip.toy.clip_model.DEMO_RESNET``); for a config that names a
   ``toy_clip`` family (the MaskCLIP and MaskCLIP+ toy configs) a toy CLIP of
   that family trained contrastively on toy image-caption pairs
   (``denseclip.toy.clip_training``, a few minutes, once).
2. Trains the config through ``tools/train.py`` (mmengine's Runner), logging
   every 20 iterations: DenseCLIP, or MaskCLIP+ on the pseudo labels of its
   frozen MaskCLIP teacher (``configs/toy/maskclip_plus_toy.py``). MaskCLIP
   (``configs/toy/maskclip_toy.py``, ``maskclip_vit_toy.py``) has nothing to
   train: this step is skipped.
3. Tests the last checkpoint (MaskCLIP: no checkpoint, the model reads its
   CLIP file) through ``tools/test.py`` with the config's inference mode on
   the validation split, paints every prediction (``--show-dir``) and prints
   the mIoU; ``--tta`` also runs the multi-scale + flip test.

``--fast`` trains 4 iterations, and a trained toy CLIP for 4 small steps only
(for tests: it checks the plumbing, not the score). ``--data-seed`` generates
the toy dataset from another seed, in its own folder (``WORK_DIR/ade_seed<N>``;
the toy CLIP stays): the default seed's data, which the toy configs name, is
never rewritten by another seed's run. The configs' paths are
pointed at ``WORK_DIR`` with ``--cfg-options``; nothing else about the config
is changed.
"""
import argparse
import dataclasses
import glob
import json
import os.path as osp
import re
import shutil
import sys
import time
from typing import Dict, List, Optional, Sequence

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)  # run from a checkout without an install too
from denseclip.toy.files import (DATA, prepare_toy_files,  # noqa: E402
                                 prepare_trained_clip)
from denseclip.toy.run_options import (LOADERS, path_options,  # noqa: E402
                                       schedule_options)
from denseclip.utils.tool_process import (ToolFailed,  # noqa: E402
                                          run_tool_process)

CONFIG = osp.join(REPO, 'configs', 'toy', 'denseclip_toy.py')
FAST_ITERS = 4

# console lines worth showing (the full log is in the work dirs)
# what tools/test.py --show-dir paints (mmseg's SegLocalVisualizer): two
# panels, each over the image
PAINTED_PANELS = 'ground truth | prediction'
_SHOW = re.compile(
    r'Iter\((train|val|test)\)|Saving checkpoint|Load checkpoint|'
    r'class names from|loaded \d+ tensors from|  (missing|unexpected) \(|'
    r'Traceback|Error|^\||^\+-')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='DenseCLIP toy demo: toy CLIP + toy ADE20K-layout data, '
        'train, slide-test, mIoU')
    parser.add_argument('--work-dir', default=osp.join('work_dirs', 'toy'),
                        help='where the toy files, checkpoints, logs and '
                        'painted predictions go (default: work_dirs/toy)')
    parser.add_argument('--iters', type=int, default=None,
                        help='training iterations (default: the config\'s)')
    parser.add_argument('--fast', action='store_true',
                        help=f'train {FAST_ITERS} iterations only (a smoke '
                        'test: no meaningful mIoU)')
    parser.add_argument('--tta', action='store_true',
                        help='also test with multi-scale + flip (--tta)')
    parser.add_argument('--config', default=CONFIG,
                        help='toy config (default: configs/toy/'
                        'denseclip_toy.py)')
    parser.add_argument('--data-seed', type=int, default=DATA['seed'],
                        help='seed of the toy dataset (default: '
                        f'{DATA["seed"]}, in WORK_DIR/ade); another seed '
                        'has its own folder, WORK_DIR/ade_seed<N>; the toy '
                        'CLIP is the same')
    parser.add_argument('--verbose', action='store_true',
                        help='print the full train/test logs')
    args = parser.parse_args(argv)
    if args.fast and args.iters is not None:
        parser.error('give --fast or --iters, not both')
    if args.fast:
        args.iters = FAST_ITERS
    if args.iters is not None and args.iters < 2:
        parser.error('--iters must be at least 2')
    return args


# ----------------------------------------------------------------- runs
def run_tool(tool: str, args: List[str], verbose: bool) -> str:
    """Run ``tools/<tool>`` in a fresh interpreter; stream the interesting
    lines (all with ``verbose``, which the tool is given too: mmengine's
    config dump and third-party warnings); return the whole output."""
    args = args + (['--verbose'] if verbose else [])
    try:
        return run_tool_process(REPO, tool, args, _SHOW, verbose)
    except ToolFailed as err:
        raise SystemExit(str(err))


def last_checkpoint(train_dir: str) -> str:
    with open(osp.join(train_dir, 'last_checkpoint')) as f:
        return f.read().strip()


def read_test_metrics(test_dir: str, since: float) -> Dict[str, float]:
    """The metrics mmengine dumped for the test run that started at ``since``
    (``<work_dir>/<timestamp>/<timestamp>.json``)."""
    runs = [
        path for path in glob.glob(osp.join(test_dir, '*', '*.json'))
        if osp.basename(osp.dirname(path)) == osp.splitext(
            osp.basename(path))[0] and osp.getmtime(path) >= since - 1
    ]
    if not runs:
        raise SystemExit(f'no metrics written under {test_dir}')
    with open(max(runs, key=osp.getmtime)) as f:
        return json.load(f)


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    args = parse_args(argv)
    start = time.time()
    work_dir = osp.abspath(args.work_dir)
    train_dir = osp.join(work_dir, 'train')
    test_dir = osp.join(work_dir, 'test')
    show_dir = osp.join(test_dir, 'show')

    from mmengine.config import Config
    cfg = Config.fromfile(args.config)
    model_type = cfg.model.type
    family = cfg.get('toy_clip')  # a trained toy CLIP (MaskCLIP, MaskCLIP+)
    # MaskCLIP is evaluated, never trained: its configs have no train loop
    trains = cfg.get('train_dataloader') is not None
    steps = 3 if trains else 2

    print(f'[1/{steps}] toy CLIP and toy ADE20K-layout data in {work_dir}')
    files = prepare_toy_files(work_dir, args.data_seed)
    print(f'  {"reused" if files.reused else "wrote"} {files.data_root} '
          f'({DATA["num_train"]} train / {DATA["num_val"]} val images, seed '
          f'{args.data_seed})')
    retrieval = None
    if family is None:
        print(f'  {"reused" if files.reused else "wrote"} {files.clip_file} '
              '(random weights)')
    else:
        trained = prepare_trained_clip(work_dir, family, fast=args.fast)
        files = dataclasses.replace(files, clip_file=trained.clip_file)
        retrieval = trained.retrieval
        print(f'  {"reused" if trained.reused else "wrote"} '
              f'{trained.clip_file} (trained on toy image-caption pairs; '
              f'held-out images matched to the caption of what they hold: '
              f'{retrieval:.0%}, chance 6%)')
    t_files = time.time()
    options = path_options(
        files, model_type, [l for l in LOADERS if cfg.get(l) is not None])

    checkpoint = None
    if trains:
        iters = (args.iters if args.iters is not None else
                 cfg.train_cfg.max_iters)
        print(f'[2/3] training {model_type} ('
              f'{osp.relpath(args.config, REPO)}, {iters} iterations)')
        # no validation inside training: step 3 evaluates the same checkpoint
        run_tool('train.py', [args.config, '--work-dir', train_dir,
                              '--cfg-options'] + options +
                 schedule_options(iters, validate=False), args.verbose)
        checkpoint = last_checkpoint(train_dir)
    t_train = time.time()

    mode = cfg.model.test_cfg.get('mode', 'whole')
    print(f'[{steps}/{steps}] testing '
          f'{"the last checkpoint" if trains else "with the frozen CLIP weights"}'
          f', {mode} inference, on the validation split')
    shutil.rmtree(show_dir, ignore_errors=True)  # this run's paintings only
    weights = [checkpoint] if checkpoint else []
    run_tool('test.py', [args.config] + weights + [
        '--work-dir', test_dir, '--show-dir', show_dir, '--cfg-options'
    ] + options, args.verbose)
    metrics = read_test_metrics(test_dir, t_train)
    painted = sorted(glob.glob(osp.join(show_dir, '**', '*.png'),
                               recursive=True))
    t_test = time.time()
    tta_metrics = None
    if args.tta:
        print('      and with multi-scale + flip (--tta)')
        t_tta = time.time()
        run_tool('test.py', [args.config] + weights + [
            '--work-dir', test_dir, '--tta', '--cfg-options'
        ] + options, args.verbose)
        tta_metrics = read_test_metrics(test_dir, t_tta)

    end = time.time()
    result = dict(metrics=metrics, tta_metrics=tta_metrics,
                  checkpoint=checkpoint, clip_file=files.clip_file,
                  retrieval=retrieval, painted=painted,
                  show_dir=osp.dirname(painted[0]) if painted else show_dir,
                  wall_s=end - start, files_reused=files.reused)
    bar = '=' * 72
    name = cfg.model.decode_head.type if model_type in (
        'EncoderDecoder', 'TrainingFreeSegmentor') else model_type
    dense_mode = ((cfg.model.get('backbone') or {}).get('dense_last_block')
                  or {}).get('mode', 'maskclip')
    if dense_mode != 'maskclip':  # SCLIP, ClearCLIP, NACLIP toy configs
        name += f' ({dense_mode} last block)'
    print(f'\n{bar}\n{name} toy demo'
          + ('' if trains else ' (no training: annotation-free)'))
    print(f'  mIoU (single scale, {mode} inference, {DATA["num_val"]} val '
          f'images, seed {args.data_seed}): {metrics["mIoU"]:.2f}   aAcc '
          f'{metrics["aAcc"]:.2f}   mAcc {metrics["mAcc"]:.2f}')
    if tta_metrics is not None:
        print(f'  mIoU (multi-scale + flip):                          '
              f'{tta_metrics["mIoU"]:.2f}')
    print(f'  checkpoint:  {checkpoint or "none (the model reads its CLIP file)"}')
    if family is not None:
        print(f'  toy CLIP:    {files.clip_file} ({family}, trained on '
              'captions)')
    print(f'  predictions: {len(painted)} painted images ({PAINTED_PANELS}) '
          f'in {result["show_dir"]}')
    print(f'  logs:        {train_dir + ", " if trains else ""}{test_dir}')
    print(f'  wall time:   {end - start:.0f} s (toy files '
          f'{t_files - start:.0f} s, '
          + (f'train {t_train - t_files:.0f} s, ' if trains else '')
          + f'test {t_test - t_train:.0f} s'
          + (f', tta {end - t_test:.0f} s' if args.tta else '') + ')')
    print(bar)
    return result


if __name__ == '__main__':
    main()
