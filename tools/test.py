"""Test (and evaluate) a segmentor: mmseg's stock ``tools/test.py``, with denseclip registered.

    python tools/test.py CONFIG [CHECKPOINT | none] [--work-dir DIR] [--out DIR]
                         [--show-dir DIR] [--tta] [--batch-size N]
                         [--compile [MODE]] [--amp]
                         [--corrupt NAME --severity L] [--allow-partial-checkpoint]
                         [--verbose] [--cfg-options k=v ...]

Released DenseCLIP checkpoints (mmseg 0.x files) load as they are. Without a
CHECKPOINT (or with ``none`` or ``-`` in its place, as tools/dist_test.sh and
tools/slurm_test.sh pass it) the model is initialised from its config
(``init_weights``): that is how MaskCLIP and the training-free methods, which
have no trained weights, run from their CLIP file. A CHECKPOINT that leaves
any of the model's tensors at its initial value (another model's file, a
ResNet-50 student's on a ResNet-101 config), outside the parts built fresh by
design (``denseclip/engine/fresh_by_design.py``), stops the test naming the
modules left out and, for a ResNet of another depth, the config the file
fits; ``--allow-partial-checkpoint`` tests anyway.

``--batch-size N`` sets the test dataloader's batch size (default: the
config's, normally 1). Test images differ in size (ADE20K, Pascal VOC after
the keep-ratio resize) and mmseg's data preprocessor refuses such batches,
so with more than one image per batch the config's plain ``TestLoop``
becomes ``SizeGroupedTestLoop``: each loader batch runs through the model as
groups of images of one size, in the loader's order, with the same
predictions as batch size 1 (whole-image inference runs a group as one
batch; slide inference runs the windows of all its images
``crop_batch_size`` at a time). Works with ``--tta`` (images are grouped
when all their augmented views match in size). Progress lines count loader
batches. docs/performance.md.

``--show-dir DIR`` paints each test image as mmseg does (the ground truth
and the prediction side by side, each over the image; the prediction alone
when there is no ground truth) into ``DIR/vis_data/vis_image/``, without
building the training set (a test-only data folder is enough).

The console shows the run: what was loaded, progress, metrics, errors.
mmengine's environment, config dump and hook order, and third-party warnings
that say nothing about your run, go to the log file in the work dir only
(``--verbose``: to the console too). The dataloader's worker processes are
stopped when the test ends (they leave no ``/tmp/pymp-*`` folders).
"""
import argparse
import os
import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

import denseclip  # noqa: F401  (registers modules, lets checkpoints load)
from denseclip.datasets.corrupt import CORRUPTIONS, SEVERITIES
from denseclip.engine import (CheckpointFitError, build_runner,
                              dataloader_workers_shut_down,
                              end_cpu_distributed_run, setup_test_run,
                              use_size_grouped_test_loop)
from denseclip.engine.compiled_inference import (COMPILE_MODES,
                                                 compile_for_inference)
from denseclip.engine.corruption_setup import add_corruption
from denseclip.engine.matmul_precision import matmul_tf32_of
from denseclip.utils.tool_output import quiet_warnings


# a CHECKPOINT argument that means "none" (the scripts' placeholder); a
# file of that name is ./none
NO_CHECKPOINT = ('none', '-')


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f'must be >= 1, got {value}')
    return value


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument(
        'checkpoint', nargs='?', default=None,
        help='checkpoint file; omit it (or give none or -) to initialise the '
        'model from its config (e.g. MaskCLIP from its CLIP file)')
    parser.add_argument(
        '--work-dir', help='where the metrics are dumped as json')
    parser.add_argument(
        '--out', type=str,
        help='directory to save output predictions for offline evaluation')
    parser.add_argument(
        '--show', action='store_true', help='show prediction results')
    parser.add_argument(
        '--show-dir',
        help='directory where painted images are saved (as given, relative '
        'to the current directory: DIR/vis_data/vis_image/): ground truth '
        'and prediction side by side, each over the image')
    parser.add_argument(
        '--wait-time', type=float, default=2, help='the interval of show (s)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings of the config, key=value pairs')
    parser.add_argument(
        '--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none', help='job launcher')
    parser.add_argument(
        '--tta', action='store_true', help='test time augmentation')
    parser.add_argument(
        '--batch-size', type=positive_int, metavar='N',
        help="images per test batch (default: the config's "
        'test_dataloader.batch_size, normally 1); above 1, a plain TestLoop '
        'becomes SizeGroupedTestLoop: each batch runs as groups of images of '
        'one size, predictions equal to batch size 1 (also with --tta)')
    parser.add_argument(
        '--compile', nargs='?', const='default', default=None,
        choices=COMPILE_MODES, metavar='MODE',
        help='torch.compile the network (the first batch of each input size '
        'compiles, tens of seconds); MODE: default, reduce-overhead (CUDA '
        'graphs, the fastest on a GPU), max-autotune (compiles for minutes)')
    parser.add_argument(
        '--amp', action='store_true',
        help='autocast inference: bfloat16 where supported, else float16')
    parser.add_argument(
        '--corrupt', choices=CORRUPTIONS, metavar='NAME',
        help='corrupt every test image (after loading, before resizing; '
        'the same way every run): one of ' + ', '.join(CORRUPTIONS))
    parser.add_argument(
        '--severity', type=int, choices=SEVERITIES, metavar='L',
        help='level of --corrupt, 1 (mild) to 5 (strong)')
    parser.add_argument(
        '--allow-partial-checkpoint', action='store_true',
        help="test even when CHECKPOINT leaves some of the model's tensors "
        "(parameters and buffers with the model's names and shapes) at "
        'their initial values; without it such a file stops the test, '
        'naming the modules left out and the keys that do not fit')
    parser.add_argument(
        '--verbose', action='store_true',
        help="also print mmengine's environment, config and hook order and "
        "third-party warnings (the run's log file has the former either "
        'way)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if args.checkpoint in NO_CHECKPOINT:
        args.checkpoint = None
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def trigger_visualization_hook(cfg, args):
    hooks = cfg.default_hooks
    if 'visualization' not in hooks:
        raise RuntimeError(
            '--show/--show-dir need a VisualizationHook in default_hooks: '
            "visualization=dict(type='SegVisualizationHook')")
    hooks['visualization']['draw'] = True
    if args.show:
        hooks['visualization']['show'] = True
        hooks['visualization']['wait_time'] = args.wait_time
    if args.show_dir:
        cfg.visualizer['save_dir'] = args.show_dir
    return cfg


def main(argv=None):
    args = parse_args(argv)
    with quiet_warnings(args.verbose):
        return run(args)


def run(args: argparse.Namespace):
    """The test run of parsed ``args``; its metrics."""
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    if args.checkpoint is not None:
        cfg.load_from = args.checkpoint
    if args.show or args.show_dir:
        cfg = trigger_visualization_hook(cfg, args)
    if args.tta:
        if 'tta_pipeline' not in cfg or 'tta_model' not in cfg:
            raise SystemExit(
                f'--tta: {args.config} defines no test-time augmentation '
                f'(tta_pipeline and tta_model); the DenseCLIP, MaskCLIP and '
                f'training-free configs have one (docs/ovss.md, "--tta")')
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model
    if args.batch_size is not None:
        if not cfg.get('test_dataloader'):
            raise SystemExit(f'--batch-size: {args.config} has no '
                             'test_dataloader')
        cfg.test_dataloader.batch_size = args.batch_size
    if (cfg.get('test_dataloader') or {}).get('batch_size', 1) > 1:
        # images of several sizes in a batch: run them in groups of one size
        use_size_grouped_test_loop(cfg)
    add_corruption(cfg, args.corrupt, args.severity)  # --corrupt, --severity
    if args.out is not None:
        cfg.test_evaluator['output_dir'] = args.out
        cfg.test_evaluator['keep_results'] = True
    # CPU torchrun (gloo); a missing or truncated checkpoint, an empty test
    # split stop here; a checkpoint of another model when it is loaded
    setup_test_run(cfg, args.launcher, args.checkpoint,
                   allow_partial_checkpoint=args.allow_partial_checkpoint)
    runner = build_runner(cfg, verbose=args.verbose)
    if args.compile or args.amp:
        compile_for_inference(runner.model, mode=args.compile, amp=args.amp)
    if cfg.get('load_from') is None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        print_log(
            'no checkpoint given: initialising the model from its config '
            '(init_weights)', logger='current')
        model.init_weights()
    try:
        # env_cfg.matmul_tf32: float32 matrix products in TF32 on the GPU;
        # the dataloader's workers stopped after (no /tmp/pymp-* left)
        with matmul_tf32_of(cfg), dataloader_workers_shut_down(runner):
            return runner.test()
    except CheckpointFitError as err:
        raise SystemExit(str(err)) from None


if __name__ == '__main__':
    main()
    # a CPU torchrun process exits here, past gloo's C++ teardown
    end_cpu_distributed_run()
