"""The toy demos: DenseCLIP, MaskCLIP, MaskCLIP+ end to end on a CPU in minutes.

    python tools/toy_demo.py [--config CONFIG] [--work-dir work_dirs/toy]
                             [--iters N] [--fast] [--tta] [--data-seed N]
                             [--verbose]

1. Writes the toy files under ``WORK_DIR`` (files already there from an
   earlier run with the same settings are reused): a synthetic dataset of
   coloured shapes in ADE20K's folder layout (``denseclip.toy_data``), and a
   tiny CLIP in OpenAI's TorchScript format: for DenseCLIP
   (``configs/toy/denseclip_toy.py``, the default) one with random weights
   (``denseclip.toy_clip.DEMO_RESNET``); for a config that names a
   ``toy_clip`` family (the MaskCLIP and MaskCLIP+ toy configs) a toy CLIP of
   that family trained contrastively on toy image-caption pairs
   (``denseclip.toy_clip_training``, a few minutes, once).
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
the toy dataset from another seed (the toy CLIP stays). The configs' paths are
pointed at ``WORK_DIR`` with ``--cfg-options``; nothing else about the config
is changed.
"""
import argparse
import dataclasses
import glob
import json
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG = osp.join(REPO, 'configs', 'toy', 'denseclip_toy.py')
FAST_ITERS = 4
# --fast: a trained toy CLIP of this many steps (learns next to nothing)
FAST_CLIP_STEPS = 4
FAST_CLIP_BATCH = 32
# the toy files; a change here regenerates them on the next run
CLIP_SEED = 0
DATA = dict(layout='ade', num_train=200, num_val=40, train_size=[128, 128],
            val_size=[120, 150], seed=0)

# console lines worth showing (the full log is in the work dirs)
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
                        f'{DATA["seed"]}); another seed writes another '
                        'dataset in WORK_DIR, the toy CLIP is kept')
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


# ------------------------------------------------------------ toy files
@dataclass(frozen=True)
class ToyFiles:
    """Where the toy CLIP file and dataset are, and whether they were reused."""
    clip_file: str
    data_root: str
    reused: bool


# written into the toy dataset folder before its images: a folder without it
# is not the demo's and is never deleted
DATA_MARKER = '.denseclip_toy_data'


def prepare_toy_files(work_dir: str, data_seed: int = DATA['seed']) -> ToyFiles:
    """Write (or reuse) the toy CLIP file and dataset under ``work_dir``.

    A manifest records what was written; files are reused only when the
    manifest matches the current settings, and it is written last, so an
    interrupted run regenerates everything. A dataset folder written by an
    earlier demo (it holds :data:`DATA_MARKER`) is replaced; any other folder
    in the way is an error. The CLIP file is DenseCLIP's, random weights;
    :func:`prepare_trained_clip` gives MaskCLIP's.
    """
    from denseclip.toy_clip import (DEMO_RESNET, build_openai_clip,
                                    write_clip_checkpoint)
    from denseclip.toy_data import make_toy_dataset

    clip_file = osp.join(work_dir, 'clip', 'toy_RN.pt')
    data_root = osp.join(work_dir, 'ade', 'ADEChallengeData2016')
    manifest_path = osp.join(work_dir, 'toy_files.json')
    data = dict(DATA, seed=data_seed)
    wanted = dict(clip=dict(DEMO_RESNET, vision_layers=list(
        DEMO_RESNET['vision_layers']), seed=CLIP_SEED, format='torchscript'),
        data=data)
    try:
        with open(manifest_path) as f:
            reuse = json.load(f) == wanted and osp.isfile(clip_file) and all(
                osp.isdir(osp.join(data_root, kind, split))
                for kind in ('images', 'annotations')
                for split in ('training', 'validation'))
    except (OSError, ValueError):
        reuse = False
    if not reuse:
        if osp.exists(manifest_path):
            os.remove(manifest_path)
        if osp.exists(data_root):
            if not osp.isfile(osp.join(data_root, DATA_MARKER)):
                raise SystemExit(
                    f'{data_root} exists and was not written by the toy '
                    'demo; move it away or choose another --work-dir')
            shutil.rmtree(data_root)  # stale toy data of other settings
        os.makedirs(data_root)
        open(osp.join(data_root, DATA_MARKER), 'w').close()
        write_clip_checkpoint(
            build_openai_clip(seed=CLIP_SEED, **DEMO_RESNET), clip_file)
        make_toy_dataset(data_root, **{
            k: tuple(v) if isinstance(v, list) else v
            for k, v in data.items()
        })
        write_json(manifest_path, wanted)
    return ToyFiles(clip_file, data_root, reuse)


def write_json(path: str, obj) -> None:
    """Write ``obj`` as JSON through a temporary file (no half-written file)."""
    tmp = path + '.part'
    with open(tmp, 'w') as f:
        json.dump(obj, f, indent=1)
    os.replace(tmp, path)


@dataclass(frozen=True)
class TrainedClip:
    """A toy CLIP trained on image-caption pairs, and whether it was reused."""
    clip_file: str
    reused: bool
    # top-1 accuracy of matching held-out images to the caption of what they
    # hold, among 16 (denseclip.toy_clip_training.content_retrieval_accuracy)
    retrieval: float


def prepare_trained_clip(work_dir: str, family: str,
                         fast: bool = False) -> TrainedClip:
    """Train (or reuse) the toy CLIP of ``family`` (``'RN'``, ``'ViT'``).

    ``WORK_DIR/clip/toy_<family>_trained.pt``, OpenAI's TorchScript format,
    trained by ``TOY_CLIP_RECIPES[family]`` (``fast``: for
    :data:`FAST_CLIP_STEPS` steps). Its manifest (``.json`` beside it, written
    last) holds the recipe and the training code's version; the file is
    reused while both are unchanged.
    """
    from denseclip.toy_clip import write_clip_checkpoint
    from denseclip.toy_clip_training import (TOY_CLIP_RECIPES,
                                             TRAINING_VERSION,
                                             content_retrieval_accuracy,
                                             train_toy_clip)
    if family not in TOY_CLIP_RECIPES:
        raise SystemExit(f'toy_clip={family!r}: no such toy CLIP; known: '
                         f'{sorted(TOY_CLIP_RECIPES)}')
    recipe = TOY_CLIP_RECIPES[family]
    if fast:
        recipe = recipe.replace(steps=FAST_CLIP_STEPS, warmup=1,
                                batch_size=FAST_CLIP_BATCH)
    clip_file = osp.join(work_dir, 'clip', f'toy_{family}_trained.pt')
    manifest_path = osp.splitext(clip_file)[0] + '.json'
    wanted = dict(recipe=recipe.to_dict(), version=TRAINING_VERSION,
                  format='torchscript')
    try:
        with open(manifest_path) as f:
            recorded = json.load(f)
        if all(recorded[k] == v for k, v in wanted.items()) and \
                osp.isfile(clip_file):
            return TrainedClip(clip_file, True, recorded['retrieval'])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    if osp.exists(manifest_path):
        os.remove(manifest_path)
    print(f'  training the toy {family} CLIP on toy image-caption pairs '
          f'({recipe.steps} steps of {recipe.batch_size}, '
          f'{recipe.image_size}px)', flush=True)
    model = train_toy_clip(recipe, log=lambda line: print(line, flush=True))
    retrieval = content_retrieval_accuracy(model,
                                           image_size=recipe.image_size)
    write_clip_checkpoint(model, clip_file)
    write_json(manifest_path, dict(wanted, retrieval=retrieval))
    return TrainedClip(clip_file, False, retrieval)


# where each toy config reads the CLIP file
CLIP_FILE_KEYS = {
    'DenseCLIP': ('model.pretrained', ),
    # MaskCLIP+: the MaskCLIP teacher's image tower and head
    'MaskClipPlus': ('model.teacher.backbone.pretrained',
                     'model.teacher.decode_head.clip_pretrained'),
    # MaskCLIP: the image tower and the head
    'EncoderDecoder': ('model.backbone.pretrained',
                       'model.decode_head.clip_pretrained'),
}


LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def path_options(files: ToyFiles, model_type: str = 'DenseCLIP',
                 loaders: Sequence[str] = LOADERS) -> List[str]:
    """``--cfg-options`` pointing a toy config of ``model_type`` (with these
    data ``loaders``) at the files."""
    return [f'{key}={files.clip_file}'
            for key in CLIP_FILE_KEYS[model_type]] + [
        f'{loader}.dataset.data_root={files.data_root}' for loader in loaders
    ]


def schedule_options(iters: int, validate: bool = True) -> List[str]:
    """``--cfg-options`` for a run of ``iters`` iterations (the config's
    shape of schedule: linear warm-up, poly decay, a checkpoint at the end).

    With ``validate`` the run ends with a validation, as the config's does;
    without, it does not validate at all (the demo tests afterwards).
    """
    # a tenth of the run, but half of a short one: mmengine's LinearLR
    # reaches the full lr only at its end, so a 1-iteration warm-up (iters //
    # 10 of a short run) would leave the whole run at the start factor
    warmup = min(50, iters // 10) if iters >= 20 else max(1, iters // 2)
    return [
        f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
        f'train_cfg.val_begin={iters if validate else iters + 1}',
        f'default_hooks.checkpoint.interval={iters}',
        f'default_hooks.logger.interval={min(20, iters)}',
        f'param_scheduler.0.end={warmup}',
        f'param_scheduler.1.begin={warmup}', f'param_scheduler.1.end={iters}'
    ]


# ----------------------------------------------------------------- runs
def run_tool(tool: str, args: List[str], verbose: bool) -> str:
    """Run ``tools/<tool>`` in a fresh interpreter; stream the interesting
    lines (all with ``verbose``); return the whole output."""
    cmd = [sys.executable, osp.join(REPO, 'tools', tool)] + args
    print(f'$ {" ".join(cmd[1:])}', flush=True)
    # the checkout first on the path: works without `pip install -e .` too
    path = os.pathsep.join(p for p in (REPO, os.environ.get('PYTHONPATH'))
                           if p)
    env = dict(os.environ, PYTHONUNBUFFERED='1', PYTHONPATH=path)
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if verbose or _SHOW.search(line.split(' - mmengine - ')[-1]):
            print('  ' + line, end='', flush=True)
    if proc.wait() != 0:
        if not verbose:
            print(''.join(lines[-60:]), file=sys.stderr)
        raise SystemExit(f'tools/{tool} failed (exit {proc.returncode}); '
                         'the last lines of its output are above')
    return ''.join(lines)


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
    sys.path.insert(0, REPO)  # run from a checkout without an install too

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
    name = cfg.model.decode_head.type if model_type == 'EncoderDecoder' \
        else model_type
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
    print(f'  predictions: {len(painted)} painted images (input | ground '
          f'truth | prediction) in {result["show_dir"]}')
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
