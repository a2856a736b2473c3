"""One training-free method over the 8 open-vocabulary benchmarks: a table.

    python tools/ovss_benchmark.py METHOD [--datasets NAME ...]
                                   [--protocol paper|default]
                                   [--pamr | --no-pamr] [--clip FILE]
                                   [--data-root DIR] [--work-dir DIR]
                                   [--verbose] [--cfg-options KEY=VALUE ...]

METHOD is ``maskclip``, ``sclip``, ``clearclip``, ``naclip``, ``scclip`` or
``proxyclip`` (which also reads a vision foundation model: ``--vfm NAME``
or a file, default the configs' ``dino_vitb8``, looked up in ``pretrained/``
and read once up front as the CLIP file is; its name and SHA-256 prefix
are in the title and the CLIP column);
the configs are ``configs/ovss/METHOD/METHOD_<clip>_<benchmark>.py`` (the
method's published settings, ``--protocol paper``, the default) or, with
``--protocol default``, this project's default protocol
(``..._<benchmark>_default.py`` where it differs from the paper's settings;
docs/ovss.md). ``--pamr`` / ``--no-pamr`` turn PAMR (10 iterations,
dilations 8 and 16) on or off on every benchmark; without either, each config
decides (NACLIP's published settings have it on). Without ``--clip`` the
``vit-b16`` configs run on ``pretrained/ViT-B-16.pt``; ``--clip FILE`` (a
path, or an OpenAI name such as ``ViT-L/14``, looked up in ``pretrained/``)
gives another CLIP ViT: a ViT-L/14-shaped one (patch 14, width 1024, 24
blocks) runs the ``vit-l14`` configs (the settings the papers run ViT-L/14
with) and is compared with the published ViT-L/14 numbers, any other the
``vit-b16`` ones; the image tower's shape is read from the file either way.
The title and a column of the table name the weights (OpenAI's name or the
file, and the file's SHA-256 prefix). The CLIP file is checked once, before
anything runs.

Each benchmark whose data is found under ``--data-root`` (default ``data``,
the configs' layout: ``data/VOCdevkit/VOC2012`` ...; a folder that does not
exist is an error, and so is one where no benchmark asked for is found) is
tested through ``tools/test.py``'s own ``main`` in this process, without a
checkpoint (the model reads its CLIP file); a benchmark without data is
skipped with a line saying what is missing. After each one the results go
to ``WORK_DIR/results.json`` and the table to ``WORK_DIR/results.md`` and
``results.csv`` (all written atomically), the CLIP and the options in its
title, the published mIoU beside ours and the average of what was measured
beside the published one. ``results.json`` records what each benchmark was
measured on (the resolved config, the CLIP file by its SHA-256, the data
root and a fingerprint of each benchmark's file list, the options): run
again, it skips the benchmarks already measured on the same, and refuses,
naming what differs, a work dir measured on anything else (so the table
never averages two settings). Run it from the repository root (the configs
name ``pretrained/ViT-B-16.pt`` and the class name files relative to it).
The runs' logs go to ``WORK_DIR/runs/<benchmark>/``; their progress lines are
echoed here.
"""
import argparse
import contextlib
import csv
import gc
import io
import itertools
import numbers
import os
import os.path as osp
import platform
import sys
import time
import traceback
from decimal import ROUND_HALF_UP, Decimal
from typing import Dict, List, Optional, Sequence, Tuple

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)  # run from a checkout without an install too
from denseclip.utils.atomic_files import (write_json_atomic,  # noqa: E402
                                          write_text_atomic)
from denseclip.utils.console_logging import \
    console_follows_stdout  # noqa: E402
from denseclip.utils.measured_on import (config_sha256,  # noqa: E402
                                         dataset_files, file_record,
                                         fingerprint_files, weight_files)
from denseclip.utils.results_file import (  # noqa: E402
    ResultsFileError, load_results as load_results_file, refuse_mix,
    start_afresh)

METHODS = ('maskclip', 'sclip', 'clearclip', 'naclip', 'scclip', 'proxyclip')
METHOD_NAMES = dict(maskclip='MaskCLIP', sclip='SCLIP', clearclip='ClearCLIP',
                    naclip='NACLIP', scclip='SC-CLIP', proxyclip='ProxyCLIP')
# the papers' order of the 8 benchmarks; the names of the config files
BENCHMARKS = ('voc21', 'context60', 'coco_object', 'voc20', 'context59',
              'coco_stuff164k', 'cityscapes', 'ade20k')
BENCHMARK_NAMES = dict(voc21='VOC21', context60='Context60',
                       coco_object='COCO-Object', voc20='VOC20',
                       context59='Context59', coco_stuff164k='COCO-Stuff',
                       cityscapes='Cityscapes', ade20k='ADE20K')
PROTOCOLS = ('paper', 'default')
# the config families by image tower: the name in the config files ->
# (the CLIP's name, its (patch_size, width, layers)); a --clip file of
# another shape runs the vit-b16 configs with its shape
CLIP_FAMILIES = {'vit-b16': ('ViT-B/16', (16, 768, 12)),
                 'vit-l14': ('ViT-L/14', (14, 1024, 24))}
DEFAULT_FAMILY = 'vit-b16'
# hex digits of a CLIP file's SHA-256 in the table
SHA_PREFIX = 12
# published ViT-B/16 mIoU in BENCHMARKS order: (source, numbers) without and
# with PAMR (docs/ovss.md, "Published numbers")
PUBLISHED: Dict[str, Dict[bool, Tuple[str, Tuple[float, ...]]]] = {
    'maskclip': {False: ('SCLIP\'s table (reprinted by ClearCLIP, NACLIP)',
                         (38.8, 23.6, 20.6, 74.9, 26.4, 16.4, 12.6, 9.8))},
    'sclip': {False: ('SCLIP paper',
                      (59.1, 30.4, 30.5, 80.4, 34.2, 22.4, 32.2, 16.1))},
    'clearclip': {False: ('ClearCLIP paper',
                          (51.8, 32.6, 33.0, 80.9, 35.9, 23.9, 30.0, 16.7))},
    'naclip': {
        False: ('NACLIP paper, without PAMR',
                (58.9, 32.2, 33.2, 79.7, 35.2, 23.3, 35.5, 17.4)),
        True: ('NACLIP README, PAMR on',
               (64.07, 34.99, 36.19, 83.03, 38.35, 25.69, 38.27, 19.05))},
    'scclip': {False: ('SC-CLIP paper (arXiv 2411.15869, Table 1; unchecked)',
                       (64.6, 36.8, 37.7, 84.3, 40.1, 26.6, 41.0, 20.1))},
    'proxyclip': {False: ('ProxyCLIP paper (ECCV 2024, Table 1, DINO ViT-B/8; '
                          'unchecked)',
                          (61.3, 35.3, 37.5, 80.3, 39.1, 26.5, 38.1, 20.2))},
}
# published ViT-L/14 mIoU, as PUBLISHED: none found for any of the four
# methods (docs/ovss.md, "ViT-L/14"), so the table's published column is
# empty ('–') on the vit-l14 configs
PUBLISHED_L14: Dict[str, Dict[bool, Tuple[str, Tuple[float, ...]]]] = {
    method: {} for method in METHODS}
PUBLISHED_BY_FAMILY = {'vit-b16': PUBLISHED, 'vit-l14': PUBLISHED_L14}
PAMR_ON = dict(type='PAMR', num_iter=10, dilations=(8, 16))
RESULTS = 'results'
TOOL = 'ovss_benchmark'
METRIC = 'mIoU'
# where the configs read their CLIP file
CLIP_KEYS = ('model.backbone.pretrained', 'model.decode_head.clip_pretrained')
# ProxyCLIP's vision foundation model (--vfm), and the methods that read one
VFM_KEY = 'model.vfm.pretrained'
VFM_METHOD_NAMES = ('proxyclip', )
# unique experiment / visualizer names for the runs of this process: mmengine
# keeps its logger, visualizer and message hub as global instances by name
_RUN_IDS = itertools.count()


def log(message: str) -> None:
    print(f'[ovss] {message}', flush=True)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Test one training-free method (configs/ovss/METHOD) on '
        'the benchmarks whose data is found; resumable; a markdown + CSV '
        'table with the published mIoU beside ours')
    parser.add_argument('method', choices=METHODS)
    parser.add_argument(
        '--datasets', nargs='+', default=list(BENCHMARKS), metavar='NAME',
        help=f'benchmarks, of {", ".join(BENCHMARKS)} (default: all 8)')
    parser.add_argument(
        '--protocol', choices=PROTOCOLS, default='paper',
        help='paper: the method\'s published settings (default); default: '
        'this project\'s default protocol (docs/ovss.md)')
    parser.add_argument(
        '--pamr', action=argparse.BooleanOptionalAction, default=None,
        help='PAMR (10 iterations, dilations 8 and 16) on / off on every '
        'benchmark (default: as each config says)')
    parser.add_argument(
        '--clip', metavar='FILE',
        help='CLIP ViT file for every benchmark, instead of the configs\' '
        'pretrained/ViT-B-16.pt: a path, a name of tools/download_clip.py '
        '--list or hf-hub:ORG/REPO (ViT-L/14: '
        'pretrained/ViT-L-14.pt); its image tower\'s shape (width, layers, '
        'heads, patch, resolution, embedding) is read from the file')
    parser.add_argument(
        '--vfm', metavar='FILE',
        help='proxyclip: the vision foundation model for every benchmark, '
        'instead of the configs\' dino_vitb8: a path or a name of '
        'tools/download_vfm.py --list, looked up in pretrained/')
    parser.add_argument(
        '--data-root', default='data',
        help='the folder the configs call data/ (default: data); it must '
        'exist')
    parser.add_argument(
        '--work-dir', help='results and the runs\' work dirs (default: '
        'work_dirs/ovss_benchmark/METHOD_PROTOCOL[_pamr|_no-pamr]'
        '[_<CLIP file name>])')
    parser.add_argument('--verbose', action='store_true',
                        help='print the test runs\' whole logs too')
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        metavar='KEY=VALUE',
                        help='passed to tools/test.py for every benchmark')
    args = parser.parse_args(argv)
    unknown = [d for d in args.datasets if d not in BENCHMARKS]
    if unknown:
        parser.error(f'unknown benchmark(s) {", ".join(unknown)}; valid: '
                     f'{", ".join(BENCHMARKS)}')
    args.datasets = [b for b in BENCHMARKS if b in args.datasets]
    if args.vfm and args.method not in VFM_METHOD_NAMES:
        parser.error(f'--vfm is read by {", ".join(VFM_METHOD_NAMES)} only; '
                     f'{args.method} runs CLIP alone')
    for option in args.cfg_options:
        if '=' not in option:
            parser.error(
                f'--cfg-options takes KEY=VALUE pairs, got {option!r}')
    if args.work_dir is None:
        pamr = {None: '', True: '_pamr', False: '_no-pamr'}[args.pamr]
        clip = ''
        if args.clip:  # a file's name, or an OpenAI name (ViT-L/14)
            clip = '_' + (
                osp.splitext(osp.basename(args.clip))[0]
                if osp.exists(args.clip) or osp.splitext(args.clip)[1] in (
                    '.pt', '.pth', '.bin', '.safetensors') else
                args.clip.replace('/', '-').replace('@', '-'))
        args.work_dir = osp.join('work_dirs', 'ovss_benchmark',
                                 f'{args.method}_{args.protocol}{pamr}{clip}')
    return args


# ---------------------------------------------------------------- configs
def config_path(method: str, benchmark: str, protocol: str,
                family: str = DEFAULT_FAMILY) -> str:
    """The config of ``method`` on ``benchmark`` for the image tower
    ``family`` (:data:`CLIP_FAMILIES`): the published settings, or the
    default protocol's file where it differs from them."""
    folder = osp.join(REPO, 'configs', 'ovss', method)
    paper = osp.join(folder, f'{method}_{family}_{benchmark}.py')
    default = paper[:-3] + '_default.py'
    if protocol == 'default' and osp.exists(default):
        return default
    return paper


def find_clip(name_or_path: str) -> str:
    """The CLIP file ``--clip`` names (a path, a name of
    ``tools/download_clip.py --list`` looked up in ``pretrained/``, or
    ``hf-hub:ORG/REPO``); an error saying how to get it otherwise."""
    from denseclip.clip.files import find_clip_file
    try:
        return find_clip_file(name_or_path)
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f'[ovss] --clip: {err}') from err


def clip_tower(path: str) -> Dict:
    """The image tower config of the CLIP file ``path``, read from it."""
    from denseclip.clip.checkpoint import CLIPCheckpointError
    from denseclip.clip.arch import read_clip_arch
    try:
        return read_clip_arch(path).visual
    except CLIPCheckpointError as err:
        raise SystemExit(f'[ovss] --clip: {err}') from err


def clip_family(tower: Optional[Dict]) -> str:
    """The config family (:data:`CLIP_FAMILIES`) for an image tower: the
    one of its shape, else (and without ``--clip``) ``vit-b16``."""
    if tower is not None:
        shape = tuple(tower.get(k) for k in ('patch_size', 'width', 'layers'))
        for family, (_, family_shape) in CLIP_FAMILIES.items():
            if shape == family_shape:
                return family
    return DEFAULT_FAMILY


def clip_options(path: str, tower: Optional[Dict] = None) -> List[str]:
    """``--cfg-options`` that point every config at the CLIP ViT file
    ``path``, with the image tower's shape read from the file (``tower``:
    :func:`clip_tower`, read when not given), its head count too where the
    file records it (the text tower's is read from it by the head)."""
    if tower is None:
        tower = clip_tower(path)
    if tower['type'] != 'CLIPVisionTransformer':
        raise SystemExit(
            f'[ovss] --clip {path} is a CLIP ResNet: the training-free '
            'methods change the last attention block of a CLIP ViT (e.g. '
            'ViT-B-16.pt)')
    return [f'model.backbone.{key}={tower[key]}' for key in (
        'input_resolution', 'patch_size', 'width', 'layers', 'heads',
        'output_dim')] + [
        f'model.backbone.pretrained={path}',
        f'model.decode_head.in_channels={tower["width"]}',
        f'model.decode_head.text_channels={tower["output_dim"]}',
        f'model.decode_head.clip_pretrained={path}']


def run_options(args: argparse.Namespace, data_root: str,
                clip: Sequence[str] = ()) -> List[str]:
    """``--cfg-options`` for ``tools/test.py``: the data root, the CLIP
    file (``clip``: :func:`clip_options`), PAMR, then the user's options
    (which win)."""
    options = [f'test_dataloader.dataset.data_root={data_root}'] + list(clip)
    if args.pamr is True:
        options += ['model.pamr._delete_=True'] + [
            f'model.pamr.{k}={v}'.replace(' ', '')
            for k, v in PAMR_ON.items()]
    elif args.pamr is False:
        options.append('model.pamr=None')
    return options + list(args.cfg_options)


def merge_options(cfg, options: Sequence[str]):
    """``cfg`` with ``options`` merged as ``tools/test.py`` merges them."""
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    parsed = parser.parse_args(['--cfg-options'] + list(options))
    cfg.merge_from_dict(parsed.cfg_options)
    return cfg


def moved_data_root(root: str, data_root: str) -> str:
    """A config's data root with its leading ``data/`` replaced by
    ``data_root``."""
    relative = osp.relpath(root, 'data')
    return root if relative.startswith('..') else osp.normpath(
        osp.join(data_root, relative))


def settings_key(cfg) -> str:
    """What a measurement depends on: the whole resolved config."""
    return config_sha256(cfg)


def pamr_on(cfg) -> bool:
    return cfg.model.get('pamr') is not None


# ------------------------------------------------------------------- data
def find_data(cfg) -> Tuple[Optional[int], str, Optional[Dict]]:
    """``(number of test images, '', data record)`` when the benchmark's
    data is there (the record: its root, images and the fingerprint of its
    file list), else ``(None, what is missing, None)``."""
    dataset_cfg = cfg.test_dataloader.dataset
    root = dataset_cfg.data_root
    if not osp.isdir(root):
        return None, f'no folder {root}', None
    prefix = dataset_cfg.get('data_prefix') or {}
    for key in ('img_path', 'seg_map_path'):
        folder = osp.join(root, prefix.get(key, ''))
        if not osp.isdir(folder):
            return None, f'no folder {folder}', None
    ann_file = dataset_cfg.get('ann_file') or ''
    ann_path = ''
    if ann_file:
        ann_path = ann_file if osp.isabs(ann_file) else osp.join(
            root, ann_file)
        if not osp.isfile(ann_path):
            return None, f'no file {ann_path}', None
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS

    import denseclip  # noqa: F401  (registers COCOObjectDataset)
    init_default_scope('mmseg')
    dataset = DATASETS.build(dict(dataset_cfg, pipeline=[]))
    if len(dataset) == 0:
        return None, f'no images listed under {root}', None
    labels = dataset.get_data_info(0).get('seg_map_path')
    if labels and not osp.isfile(labels):
        hint = (' (make them: tools/dataset_converters/coco_object.py)'
                if 'COCOObject' in str(dataset_cfg.type) else '')
        return None, f'labels missing, e.g. {labels}{hint}', None
    files = dataset_files(dataset) + ([ann_path] if ann_path else [])
    record = dict(fingerprint_files(root, files), images=len(dataset))
    return len(dataset), '', record


# ------------------------------------------------------------------- runs
class _ProgressEcho(io.TextIOBase):
    """The run's console output into its log file; its progress lines
    (mmengine's ``Iter(test) [i/n]``) echoed to ``out`` as well."""

    def __init__(self, log_file, out, label: str):
        self.log_file, self.out, self.label = log_file, out, label
        self.pending = ''

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.log_file.write(text)
        self.pending += text
        *lines, self.pending = self.pending.split('\n')
        for line in lines:
            at = line.find('Iter(test)')
            if at >= 0:
                self.out.write(f'[ovss]   {self.label}: '
                               f'{" ".join(line[at:].split())}\n')
                self.out.flush()
        return len(text)

    def flush(self) -> None:
        self.log_file.flush()


def _detach_logger(name: str) -> None:
    """Close the handlers of a run's logger (its log file, its console)."""
    from mmengine.logging import MMLogger
    if MMLogger.check_instance_created(name):
        logger = MMLogger.get_instance(name)
        for handler in list(logger.handlers):
            handler.close()
            logger.removeHandler(handler)


def load_test_tool():
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        '_denseclip_test_tool', osp.join(REPO, 'tools', 'test.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_benchmark(test_tool, path: str, options: Sequence[str],
                  run_dir: str, label: str,
                  verbose: bool) -> Dict[str, float]:
    """One test run through ``tools/test.py``'s ``main``; its metrics."""
    run_id = f'ovss_{label}_{os.getpid()}_{next(_RUN_IDS)}'
    argv = [path, '--work-dir', run_dir, '--cfg-options'] + list(options) + [
        f'experiment_name={run_id}', f'visualizer.name={run_id}',
        # no worker pools left behind by the runs of this process
        'test_dataloader.persistent_workers=False']
    os.makedirs(run_dir, exist_ok=True)
    console = osp.join(run_dir, 'console.log')
    try:
        if verbose:
            metrics = test_tool.main(argv)
        else:  # the run's output to its folder, progress lines echoed
            with open(console, 'w') as out:
                echo = _ProgressEcho(out, sys.stdout, label)
                with contextlib.redirect_stdout(echo), \
                        contextlib.redirect_stderr(echo):
                    metrics = test_tool.main(argv)
    finally:
        _detach_logger(run_id)
        gc.collect()
    # IoUMetric's values are numpy float32: 90.91, not 90.91000366210938
    return {k: float(str(v)) for k, v in (metrics or {}).items()
            if isinstance(v, numbers.Real)}


def device_name() -> str:
    """The machine a measurement ran on, as the table reports it."""
    import torch
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    cpu = platform.processor() or platform.machine()
    threads = torch.get_num_threads()
    return f'CPU {cpu}, {threads} thread{"s" if threads > 1 else ""}'


# ---------------------------------------------------------- results file
def clip_files(plan: Dict[str, Dict],
               benchmarks: Sequence[str] = BENCHMARKS) -> Dict[str, List[str]]:
    """``{CLIP file: the config keys that name it}`` over the benchmarks'
    configs."""
    found: Dict[str, set] = {}
    for benchmark in benchmarks:
        for key, path in weight_files(plan[benchmark]['cfg'].model).items():
            if not key.startswith('model.vfm.'):
                found.setdefault(path, set()).add(key)
    return {path: sorted(keys) for path, keys in sorted(found.items())}


def find_vfm(args: argparse.Namespace) -> Optional[str]:
    """The VFM file of a method that reads one (``--vfm``, else the
    configs' name), resolved and read once: an error naming the name, the
    configs and the download command otherwise; None for other methods."""
    if args.method not in VFM_METHOD_NAMES:
        return None
    from mmengine.config import Config
    from denseclip.vfm import VFMCheckpointError, find_vfm_file, read_vfm_arch
    given = args.vfm
    if given is None:
        first = config_path(args.method, BENCHMARKS[0], args.protocol)
        given = Config.fromfile(first).model.vfm.pretrained
    try:
        path = find_vfm_file(given)
        read_vfm_arch(path)
    except (FileNotFoundError, ValueError, VFMCheckpointError) as err:
        where = '--vfm' if args.vfm else (
            f'{VFM_KEY} of configs/ovss/{args.method}/*.py')
        raise SystemExit(f'[ovss] {where}: {err}; nothing was run') from err
    return path


def check_clip_files(args: argparse.Namespace,
                     plan: Dict[str, Dict]) -> None:
    """Every CLIP file the benchmarks asked for read, checked once before
    anything runs: one error naming a missing or unreadable file."""
    from denseclip.clip.files import (UnknownModelError, clip_file_for,
                                      resolve_name)
    from denseclip.clip.checkpoint import (CLIPCheckpointError,
                                           load_clip_checkpoint)
    family = plan[BENCHMARKS[0]]['clip_family']
    for path, keys in clip_files(plan, args.datasets).items():
        where = (f'{", ".join(keys)} of configs/ovss/{args.method}/'
                 f'{args.method}_{family}_*.py')
        try:  # pretrained/ViT-B-16.pt may have come as ViT-B-16.safetensors
            path = clip_file_for(path)
        except (FileNotFoundError, ValueError):
            pass
        if not osp.exists(path):
            try:
                name = resolve_name(path)
                get = (f'download it (python tools/download_clip.py {name}; '
                       'pretrained/README.md lists the files) or give ')
            except UnknownModelError:
                get = 'give '
            raise SystemExit(
                f'[ovss] CLIP file {path} does not exist ({where}): {get}'
                'one with --clip FILE; nothing was run')
        try:
            load_clip_checkpoint(path)
        except CLIPCheckpointError as err:
            raise SystemExit(f'[ovss] {err} ({where}); nothing was run')


def measured_on(args: argparse.Namespace, plan: Dict[str, Dict],
                known: Optional[Dict]) -> Dict:
    """What every benchmark of the work dir is measured on, besides each
    one's config and data (recorded in its cell): a results file measured
    on anything else is not resumed."""
    known_clip = (known or {}).get('clip') or {}
    known_vfm = (known or {}).get('vfm') or {}
    vfm = getattr(args, 'vfm_file', None)
    on = dict(
        method=args.method, protocol=args.protocol, pamr=args.pamr,
        clip={path: file_record(path, known_clip.get(path))
              for path in clip_files(plan)},
        data_root=osp.abspath(args.data_root),
        cfg_options=list(args.cfg_options))
    if vfm:  # ProxyCLIP's VFM file (other methods' records stay as they were)
        on['vfm'] = {vfm: file_record(vfm, known_vfm.get(vfm))}
    return on


def load_results(path: str, args: argparse.Namespace,
                 plan: Dict[str, Dict]) -> Dict:
    """The cells recorded in ``path`` (none when there is no file); stops
    on another tool's file, an older format, or cells measured on something
    else."""
    try:
        return load_results_file(path, TOOL,
                                 lambda known: measured_on(args, plan, known))
    except ResultsFileError as err:
        raise SystemExit(f'[ovss] {err}') from err


def check_cells(path: str, cells: Dict, plan: Dict[str, Dict],
                data: Dict[str, Tuple]) -> Dict[str, str]:
    """Each recorded cell measured with the config and on the data this run
    has (else an error naming the benchmark and what differs); returns a
    note for those whose data is not found now (kept as measured)."""
    notes = {}
    for benchmark, cell in cells.items():
        if benchmark not in plan:
            raise SystemExit(f'[ovss] {path} holds a cell {benchmark!r}, '
                             f'not one of {", ".join(BENCHMARKS)}; '
                             f'{start_afresh(path)}')
        record = data[benchmark][2]
        if record is None:
            notes[benchmark] = 'measured earlier (data not found now)'
        recorded = dict(config=cell.get('config'),
                        config_sha256=cell.get('settings'),
                        data=cell.get('data'))
        current = dict(config=plan[benchmark]['config'],
                       config_sha256=plan[benchmark]['settings'],
                       data=record if record is not None else
                       cell.get('data'))
        try:
            refuse_mix(path, recorded, current,
                       f'its {benchmark} cell was')
        except ResultsFileError as err:
            raise SystemExit(f'[ovss] {err}') from err
    return notes


# ---------------------------------------------------------------- outputs
def _fmt(value: Optional[float], sign: bool = False) -> str:
    """Two decimals, halves rounded up (42.455 -> 42.46, as published)."""
    if value is None:
        return '–'
    rounded = Decimal(repr(round(value, 6))).quantize(Decimal('0.01'),
                                                     ROUND_HALF_UP)
    return f'{rounded:+.2f}' if sign else f'{rounded:.2f}'


def _mean(values: Sequence[float]) -> Optional[float]:
    return sum(values) / len(values) if values else None


def _average_row(label: str, ours: Sequence[float],
                 theirs: Optional[Sequence[float]]) -> Dict:
    mean_ours = _mean(ours)
    mean_theirs = _mean(theirs) if theirs else None
    return dict(
        benchmark=label, config='', pamr='', images='', ours=mean_ours,
        published=mean_theirs,
        difference=(None if None in (mean_ours, mean_theirs) else
                    mean_ours - mean_theirs),
        seconds=None, device='', status='', clip='')


def published_numbers(method: str, plan: Dict[str, Dict]) -> Dict:
    """``method``'s published numbers for the plan's image tower family:
    ``{PAMR on: (source, numbers)}``."""
    return PUBLISHED_BY_FAMILY[plan[BENCHMARKS[0]]['clip_family']][method]


def table_rows(method: str, cells: Dict, plan: Dict[str, Dict],
               notes: Dict[str, str]) -> List[Dict]:
    """One row per benchmark (the published numbers for the row's PAMR
    setting: the measured run's, else the planned one's), then the average
    over the benchmarks measured (the published one over the same, when
    each has one) and, when only some have published numbers, the average
    over those."""
    rows, pairs = [], []
    published = published_numbers(method, plan)
    for index, benchmark in enumerate(BENCHMARKS):
        cell = cells.get(benchmark)
        info = cell if cell is not None else plan[benchmark]
        source = published.get(info['pamr'])
        row = dict(benchmark=BENCHMARK_NAMES[benchmark],
                   config=info['config'],
                   pamr='on' if info['pamr'] else 'off', images='',
                   ours=None, published=source[1][index] if source else None,
                   difference=None, seconds=None, device='',
                   status=notes.get(benchmark, 'not run'),
                   clip=plan[benchmark]['clip_short'])
        if cell is not None:
            value = cell['metrics'].get(METRIC)
            row.update(images=cell['images'], ours=value,
                       seconds=cell['seconds'], device=cell['device'],
                       status=notes.get(benchmark, 'measured earlier'))
            if value is not None:
                pairs.append((value, row['published']))
                if row['published'] is not None:
                    row['difference'] = value - row['published']
        rows.append(row)
    ours = [v for v, _ in pairs]
    theirs = [p for _, p in pairs if p is not None]
    rows.append(_average_row(
        f'average ({len(ours)} of {len(BENCHMARKS)})', ours,
        theirs if len(theirs) == len(ours) else None))
    if 0 < len(theirs) < len(ours):
        rows.append(_average_row(
            f'average with published ({len(theirs)} of {len(BENCHMARKS)})',
            [v for v, p in pairs if p is not None], theirs))
    return rows


def clip_name(path: str, sha256: Optional[str]) -> str:
    """OpenAI's name of a CLIP file (by its SHA-256), else the file's
    name."""
    from denseclip.clip.files import CLIP_FILES
    by_sha = {f.sha256: f.name for f in CLIP_FILES.values() if f.sha256}
    return by_sha.get(sha256) or osp.basename(path)


def clip_short_label(path: str, sha256: Optional[str]) -> str:
    """The table column's name of the weights: ``ViT-L/14 b8cca3fd41ae``
    (the name and the SHA-256 prefix)."""
    return f'{clip_name(path, sha256)} {str(sha256)[:SHA_PREFIX]}'


def clip_label(on: Dict) -> str:
    """The CLIP the benchmarks read: OpenAI's name when the file is one of
    OpenAI's (by its SHA-256), else the file and its image tower; and the
    file's SHA-256 prefix."""
    from denseclip.clip.files import CLIP_FILES
    by_sha = {f.sha256: f.name for f in CLIP_FILES.values() if f.sha256}
    labels = []
    for path, record in sorted((on.get('clip') or {}).items()):
        sha = f'SHA-256 {str(record.get("sha256"))[:SHA_PREFIX]}'
        name = by_sha.get(record.get('sha256'))
        if name:
            labels.append(f'{name} ({path}, {sha})')
            continue
        try:
            from denseclip.clip.checkpoint import load_clip_checkpoint
            from denseclip.clip.arch import clip_visual_cfg
            tower = clip_visual_cfg(load_clip_checkpoint(path), path)
            labels.append(
                f'{path} (ViT, patch {tower["patch_size"]}, width '
                f'{tower["width"]}, {tower["layers"]} layers, '
                f'{tower["input_resolution"]} px, {sha})')
        except Exception:  # noqa: BLE001 - a label, not a check
            labels.append(f'{path} ({sha})')
    return ', '.join(labels) or 'no CLIP file'


def options_text(args: argparse.Namespace) -> str:
    return ('`' + ' '.join(args.cfg_options) + '`' if args.cfg_options else
            'none')


def markdown(args: argparse.Namespace, rows: List[Dict], cells: Dict,
             plan: Dict[str, Dict], on: Optional[Dict] = None) -> str:
    name = METHOD_NAMES[args.method]
    protocol = ('its published settings' if args.protocol == 'paper' else
                'this project\'s default protocol')
    pamr = {None: 'PAMR as each config says', True: 'PAMR on',
            False: 'PAMR off'}[args.pamr]
    states = {(cells.get(b) or plan[b])['pamr'] for b in BENCHMARKS}
    published = published_numbers(args.method, plan)
    family = CLIP_FAMILIES[plan[BENCHMARKS[0]]['clip_family']][0]
    sources = [f'{published[s][0]} (average of the 8: '
               f'{_fmt(_mean(published[s][1]))})'
               for s in sorted(states) if s in published]
    sources += [f'none {"with" if s else "without"} PAMR'
                for s in sorted(states) if s not in published]
    clip = clip_label(on) if on else 'the configs\' CLIP file'
    for path, record in sorted(((on or {}).get('vfm') or {}).items()):
        clip += (f', VFM {path} (SHA-256 '
                 f'{str(record.get("sha256"))[:SHA_PREFIX]})')
    lines = [f'# {name} on the open-vocabulary benchmarks, CLIP {clip}',
             '', f'{protocol.capitalize()}, {pamr}; --cfg-options: '
             f'{options_text(args)}; {METRIC} (%). Published ({family}): '
             f'{"; ".join(sources)}. The average row is over the '
             'benchmarks measured, its published column over the same ones '
             '(when each has a published number).', '',
             '| benchmark | ours | published | ours - published | PAMR | '
             'images | CLIP | config | status |',
             '|---|---|---|---|---|---|---|---|---|']
    for row in rows:
        lines.append(
            f'| {row["benchmark"]} | {_fmt(row["ours"])} | '
            f'{_fmt(row["published"])} | {_fmt(row["difference"], True)} | '
            f'{row["pamr"]} | {row["images"]} | {row["clip"]} | '
            f'{row["config"]} | {row["status"]} |')
    devices = sorted({c['device'] for c in cells.values()})
    if devices:
        lines += ['', f'Measured on {"; ".join(devices)}.']
    return '\n'.join(lines) + '\n'


def write_outputs(args: argparse.Namespace, results: Dict,
                  plan: Dict[str, Dict],
                  notes: Dict[str, str]) -> Dict[str, str]:
    cells = results['cells']
    on = results['measured_on']
    rows = table_rows(args.method, cells, plan, notes)
    paths = {ext: osp.join(args.work_dir, f'{RESULTS}.{ext}')
             for ext in ('md', 'csv')}
    write_text_atomic(paths['md'], markdown(args, rows, cells, plan, on))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator='\n')
    columns = ['benchmark', 'ours', 'published', 'difference', 'pamr',
               'images', 'seconds', 'device', 'config', 'status']
    header = [f'{METRIC}_{c}' if c in ('ours', 'published') else c
              for c in columns]
    writer.writerow(header + ['clip', 'clip_sha256', 'cfg_options'])
    clip = on.get('clip') or {}
    clip_paths = ' '.join(clip)
    clip_shas = ' '.join(str(r.get('sha256')) for r in clip.values())
    for row in rows:
        writer.writerow([
            ('' if row[c] is None else
             round(row[c], 4) if isinstance(row[c], float) else row[c])
            for c in columns] + [clip_paths, clip_shas,
                                 ' '.join(args.cfg_options)])
    write_text_atomic(paths['csv'], buf.getvalue())
    return paths


# ------------------------------------------------------------------- main
def plan_benchmarks(args: argparse.Namespace) -> Dict[str, Dict]:
    """Each benchmark's config (path, options, the config as it will run,
    its settings key, PAMR on or off)."""
    from mmengine.config import Config
    from denseclip.utils.measured_on import file_record
    clip, tower = [], None
    if args.clip:
        clip_file = find_clip(args.clip)
        tower = clip_tower(clip_file)
        clip = clip_options(clip_file, tower)
    if getattr(args, 'vfm_file', None):
        clip = list(clip) + [f'{VFM_KEY}={args.vfm_file}']
    family = clip_family(tower)
    plan = {}
    for benchmark in BENCHMARKS:
        path = config_path(args.method, benchmark, args.protocol, family)
        cfg = Config.fromfile(path)
        options = run_options(args, moved_data_root(
            cfg.test_dataloader.dataset.data_root, args.data_root), clip)
        cfg = merge_options(cfg, options)
        plan[benchmark] = dict(path=path, config=osp.relpath(path, REPO),
                               options=options, cfg=cfg,
                               settings=settings_key(cfg), pamr=pamr_on(cfg),
                               clip_family=family)
    # the weights' column: the file the configs read, by name and SHA-256
    files = clip_files(plan)
    short = ', '.join(
        clip_short_label(f, file_record(f).get('sha256'))
        if osp.isfile(f) else f for f in files)
    vfm = getattr(args, 'vfm_file', None)
    if vfm:  # the VFM beside the CLIP in the weights' column
        short += ', VFM ' + clip_short_label(vfm,
                                             file_record(vfm).get('sha256'))
    for job in plan.values():
        job['clip_short'] = short
    return plan


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    """Run the benchmarks; return the results (``cells``: benchmark ->
    measurement), the table's ``rows``, ``paths``, ``measured`` (how many
    this run) and ``failed`` (their names)."""
    args = parse_args(argv)
    if not osp.isdir(args.data_root):
        raise SystemExit(
            f'[ovss] --data-root {args.data_root}: no such folder (the '
            'benchmarks\' data goes under it as under data/: docs/ovss.md, '
            '"The 8 benchmarks"); nothing was run')
    if args.clip:
        args.clip = find_clip(args.clip)
    args.vfm_file = find_vfm(args)
    plan = plan_benchmarks(args)
    check_clip_files(args, plan)
    results_path = osp.join(args.work_dir, f'{RESULTS}.json')
    results = load_results(results_path, args, plan)
    cells = results['cells']
    data = {b: find_data(plan[b]['cfg'])
            for b in BENCHMARKS if b in args.datasets or b in cells}
    notes = check_cells(results_path, cells, plan, data)
    if not any(data[b][0] for b in args.datasets) and not any(
            b in cells for b in args.datasets):
        raise SystemExit(
            f'[ovss] no data of {", ".join(args.datasets)} under '
            f'{args.data_root}: ' + '; '.join(
                f'{b}: {data[b][1]}' for b in args.datasets) +
            '; nothing was run')
    write_json_atomic(results_path, results)  # the work dir is this run's
    failed: List[str] = []
    test_tool = None
    start, measured = time.time(), 0
    vfm = ''.join(f', VFM {p}' for p in results['measured_on'].get('vfm')
                  or {})
    log(f'{METHOD_NAMES[args.method]}, {args.protocol} settings: '
        f'{len(args.datasets)} benchmark(s), data under {args.data_root}, '
        f'CLIP {", ".join(results["measured_on"]["clip"])}{vfm}, '
        f'--cfg-options {options_text(args)}, results in {args.work_dir}')
    for index, benchmark in enumerate(args.datasets, 1):
        head = f'{index}/{len(args.datasets)} {benchmark}'
        job = plan[benchmark]
        cell = cells.get(benchmark)
        if cell is not None:
            notes.setdefault(benchmark, 'measured earlier')
            log(f'{head}: {METRIC} {_fmt(cell["metrics"].get(METRIC))} '
                '(measured earlier, skipped)')
            continue
        images, missing, record = data[benchmark]
        if images is None:
            notes[benchmark] = f'skipped: {missing}'
            log(f'{head}: skipped, {missing}')
            continue
        log(f'{head}: {images} images, {job["config"]}, PAMR '
            f'{"on" if job["pamr"] else "off"}: testing ...')
        if test_tool is None:
            test_tool = load_test_tool()
        t = time.time()
        run_dir = osp.join(args.work_dir, 'runs', benchmark)
        console_follows_stdout()  # what the run logs goes where it prints
        try:
            metrics = run_benchmark(test_tool, job['path'], job['options'],
                                    run_dir, benchmark, args.verbose)
        except (Exception, SystemExit) as err:  # the next benchmark runs
            failed.append(benchmark)
            notes[benchmark] = f'failed: {type(err).__name__}'
            console = osp.join(run_dir, 'console.log')
            if not args.verbose and osp.exists(console):
                with open(console) as f:
                    print(''.join(f.readlines()[-30:]), file=sys.stderr)
            print(''.join(traceback.format_exception_only(type(err), err)),
                  file=sys.stderr, flush=True)
            log(f'{head}: failed ({type(err).__name__}: {err}); its output: '
                f'{console}')
            write_outputs(args, results, plan, notes)
            continue
        cells[benchmark] = dict(
            metrics=metrics, seconds=round(time.time() - t, 1),
            images=images, config=job['config'], pamr=job['pamr'],
            settings=job['settings'], device=device_name(),
            options=job['options'], data=record)
        notes[benchmark] = 'measured'
        write_json_atomic(results_path, results)
        write_outputs(args, results, plan, notes)  # the table as it grows
        measured += 1
        value = metrics.get(METRIC)
        source = published_numbers(args.method, plan).get(job['pamr'])
        versus = ''
        if source is not None and value is not None:
            published = source[1][BENCHMARKS.index(benchmark)]
            versus = f' (published {published:.2f}, {value - published:+.2f})'
        log(f'{head}: {METRIC} {_fmt(value)}{versus} in '
            f'{time.time() - t:.0f} s')
    paths = write_outputs(args, results, plan, notes)
    rows = table_rows(args.method, cells, plan, notes)
    log(f'{measured} measured, {len(failed)} failed, '
        f'{len(args.datasets) - measured - len(failed)} skipped or measured '
        f'earlier, {time.time() - start:.0f} s')
    print(markdown(args, rows, cells, plan, results['measured_on']),
          flush=True)
    log('wrote ' + ', '.join([results_path] + list(paths.values())))
    return dict(results, rows=rows, paths=paths, measured=measured,
                failed=failed)


if __name__ == '__main__':
    sys.exit(1 if main()['failed'] else 0)
