"""Which datasets are ready under a data root, and what each one lacks.

    python tools/check_datasets.py [--data-root data] [--only NAME ...]
                                   [--samples N] [--any-count]

Checks ADE20K's training set (DenseCLIP's training data), the 8 benchmarks
of the training-free protocol (VOC21, Context60, COCO-Object, VOC20,
Context59, COCO-Stuff, Cityscapes, ADE20K; MaskCLIP's configs read the same
folders) and VOC aug (VOC2012 train + SBD, MaskCLIP+'s VOC training set).
The folders, list files and file names are not written here: each dataset
is built from the config that reads it (``CHECKS``), with the config's
leading ``data/`` replaced by ``--data-root``, so the check and the configs
cannot drift apart. For each dataset it reports:

- a missing folder or list file (the dataset is *missing*);
- the number of images listed against the real dataset's (``EXPECTED``;
  ``--any-count`` accepts a subset or a split of your own);
- listed images whose file is absent, and images without a label map;
- the label values of ``--samples`` label maps spread over the split against
  the values the config's dataset reads (its classes, ``reduce_zero_label``
  or class subset, and its ignore index), and label maps stored as colour
  images instead of class indices.

Exit status 0 when every dataset asked for is ready, 1 otherwise, 2 for bad
arguments. How to make each dataset: docs/datasets.md.
"""
import argparse
import os.path as osp
import sys
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)  # run from a checkout without an install too

GUIDE = 'docs/datasets.md'


@dataclass(frozen=True)
class Check:
    """One dataset: what it is, the config and dataloader that read it,
    the image counts of the real dataset (one per dataset of a
    ``ConcatDataset``) and the section of the guide that makes it."""
    title: str
    config: str
    loader: str
    expected: Tuple[int, ...]
    guide: str


# The order of the training-free papers' tables, then the training sets.
CHECKS: Dict[str, Check] = {
    'voc21': Check('Pascal VOC 2012 val, 21 classes with background',
                   'configs/ovss/_base_/datasets/voc21.py',
                   'test_dataloader', (1449, ), 'pascal-voc-2012'),
    'context60': Check('Pascal Context val, 60 classes with background',
                       'configs/ovss/_base_/datasets/context60.py',
                       'test_dataloader', (5105, ), 'pascal-context'),
    'coco_object': Check('COCO-Object val2017, 81 classes',
                         'configs/ovss/_base_/datasets/coco_object.py',
                         'test_dataloader', (5000, ), 'coco-object'),
    'voc20': Check('Pascal VOC 2012 val, 20 classes without background',
                   'configs/ovss/_base_/datasets/voc20.py',
                   'test_dataloader', (1449, ), 'pascal-voc-2012'),
    'context59': Check('Pascal Context val, 59 classes',
                       'configs/ovss/_base_/datasets/context59.py',
                       'test_dataloader', (5105, ), 'pascal-context'),
    'coco_stuff164k': Check('COCO-Stuff 164k val2017, 171 classes',
                            'configs/ovss/_base_/datasets/coco_stuff164k.py',
                            'test_dataloader', (5000, ), 'coco-stuff-164k'),
    'cityscapes': Check('Cityscapes val, 19 classes',
                        'configs/ovss/_base_/datasets/cityscapes.py',
                        'test_dataloader', (500, ), 'cityscapes'),
    'ade20k': Check('ADE20K val, 150 classes',
                    'configs/ovss/_base_/datasets/ade20k.py',
                    'test_dataloader', (2000, ), 'ade20k'),
    'ade20k_train': Check('ADE20K train, 150 classes (DenseCLIP training)',
                          'configs/denseclip_fpn_r50_ade.py',
                          'train_dataloader', (20210, ), 'ade20k'),
    'voc_aug': Check('VOC2012 train + SBD aug (MaskCLIP+ training)',
                     'configs/maskclip_plus/_base_/datasets/'
                     'voc12aug_20_annofree.py',
                     'train_dataloader', (1464, 9118), 'voc-aug-sbd'),
}
# what COCO-Object's label maps are made with (they are not downloaded)
MAKERS = {'coco_object': 'tools/dataset_converters/coco_object.py'}


@dataclass
class Report:
    """What one dataset (or one part of a ``ConcatDataset``) has and lacks;
    ``missing`` when it cannot be read at all."""
    lines: List[str] = field(default_factory=list)
    problems: List[str] = field(default_factory=list)
    missing: bool = False


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Say which datasets are ready under a data root and '
        'what each one lacks (docs/datasets.md makes them).')
    parser.add_argument(
        '--data-root', default='data',
        help="replaces the configs' leading data/ (default: data)")
    parser.add_argument('--only', nargs='+', metavar='NAME',
                        help=f'check only these: {", ".join(CHECKS)}')
    parser.add_argument(
        '--samples', type=int, default=5,
        help='label maps read per dataset for their values (default 5)')
    parser.add_argument(
        '--any-count', action='store_true',
        help="accept image counts other than the real dataset's (a subset "
        'or a split of your own)')
    args = parser.parse_args(argv)
    unknown = [n for n in args.only or () if n not in CHECKS]
    if unknown:
        parser.error(f'unknown dataset(s) {", ".join(unknown)}; '
                     f'choose from {", ".join(CHECKS)}')
    if args.samples < 1:
        parser.error(f'--samples must be at least 1, got {args.samples}')
    return args


def moved_data_root(root: str, data_root: str) -> str:
    """A config's data root with its leading ``data/`` replaced by
    ``data_root`` (as tools/ovss_benchmark.py --data-root does)."""
    relative = osp.relpath(root, 'data')
    return root if relative.startswith('..') else osp.normpath(
        osp.join(data_root, relative))


def dataset_cfgs(check: Check) -> List[dict]:
    """The dataset configs ``check``'s config reads, one per dataset of a
    ``ConcatDataset`` / inside a ``RepeatDataset``."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(REPO, check.config))
    found, todo = [], [cfg[check.loader]['dataset']]
    while todo:
        ds = todo.pop(0)
        if ds.get('type') == 'ConcatDataset':
            todo[:0] = list(ds['datasets'])
        elif ds.get('type') == 'RepeatDataset':
            todo.insert(0, ds['dataset'])
        else:
            found.append(ds.to_dict() if hasattr(ds, 'to_dict') else
                         dict(ds))
    return found


def _values(values: Sequence[int]) -> str:
    """``0-20, 255`` for a sorted list of label values."""
    runs, start = [], None
    for i, v in enumerate(values):
        if start is None:
            start = v
        if i + 1 == len(values) or values[i + 1] != v + 1:
            runs.append(str(start) if start == v else f'{start}-{v}')
            start = None
    return ', '.join(runs) if runs else 'none'


def readable_values(dataset) -> Tuple[set, str]:
    """The label values ``dataset`` reads in a stored label map, and how
    they are read (its classes, ``reduce_zero_label`` or class subset, and
    the ignore index)."""
    num = len(dataset.metainfo['classes'])
    ignore = dataset.ignore_index
    if dataset.label_map:
        values = set(dataset.label_map)
        how = f'{len(values)} stored classes mapped to {num}'
    elif dataset.reduce_zero_label:
        values = set(range(num + 1))
        how = f'0 ignored, 1-{num} -> 0-{num - 1} (reduce_zero_label)'
    else:
        values = set(range(num))
        how = f'{num} classes'
    return values | {ignore}, f'{how}, {ignore} ignored'


def label_values(path: str) -> Tuple[Optional[set], str]:
    """The values of a label map, or ``(None, why not)``."""
    import numpy as np
    from PIL import Image
    try:
        with Image.open(path) as image:
            mode = image.mode
            array = np.asarray(image)
    except Exception as e:  # unreadable: named, not raised
        return None, f'unreadable ({type(e).__name__}: {e})'
    if array.ndim != 2:
        return None, (f'a {mode} colour image, not a map of class indices '
                      '(the converter writes single-channel PNGs)')
    return set(np.unique(array).tolist()), ''


def spread(items: Sequence, count: int) -> List:
    """``count`` items spread evenly over ``items`` (first and last
    included)."""
    if len(items) <= count:
        return list(items)
    if count == 1:
        return [items[0]]
    step = (len(items) - 1) / (count - 1)
    return [items[round(i * step)] for i in range(count)]


def check_part(ds_cfg: dict, expected: int, args: argparse.Namespace,
               maker: Optional[str]) -> Report:
    """Check one dataset config (not a wrapper)."""
    report = Report()
    root = moved_data_root(ds_cfg.get('data_root') or '', args.data_root)
    prefix = ds_cfg.get('data_prefix') or {}
    needed = [('folder', root)] + [
        ('folder', osp.join(root, prefix.get(key) or ''))
        for key in ('img_path', 'seg_map_path')]
    ann_file = ds_cfg.get('ann_file') or ''
    if ann_file:
        needed.append(('list file', ann_file if osp.isabs(ann_file) else
                       osp.join(root, ann_file)))
    for kind, path in needed:
        exists = osp.isdir(path) if kind == 'folder' else osp.isfile(path)
        if not exists:
            report.missing = True
            report.problems.append(f'no {kind} {path}')
            return report
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS

    import denseclip  # noqa: F401  (registers COCOObjectDataset)
    init_default_scope('mmseg')
    try:
        dataset = DATASETS.build(dict(ds_cfg, data_root=root, pipeline=[]))
    except Exception as e:
        report.missing = True
        report.problems.append(
            f'{ds_cfg.get("type")} under {root} cannot be read: '
            f'{type(e).__name__}: {e}')
        return report
    infos = [dataset.get_data_info(i) for i in range(len(dataset))]
    source = (f'listed in {osp.join(root, ann_file)}' if ann_file else
              f'under {osp.join(root, prefix.get("img_path") or "")}')
    if not infos:
        report.missing = True
        report.problems.append(f'no images {source}')
        return report
    count = f'{len(infos)} images {source} (the real dataset: {expected})'
    report.lines.append(count)
    if len(infos) != expected and not args.any_count:
        report.problems.append(
            f'{len(infos)} images, not {expected}: an incomplete download '
            'or another split (--any-count accepts it)')
    no_image = [i['img_path'] for i in infos if not osp.isfile(i['img_path'])]
    if no_image:
        report.problems.append(
            f'{len(no_image)} of {len(infos)} listed images do not exist, '
            f'e.g. {no_image[0]}')
    labelled = [i['seg_map_path'] for i in infos
                if osp.isfile(i['seg_map_path'])]
    unlabelled = [i['seg_map_path'] for i in infos
                  if not osp.isfile(i['seg_map_path'])]
    if unlabelled:
        hint = f' (make them: {maker})' if maker else ''
        report.problems.append(
            f'{len(unlabelled)} of {len(infos)} images have no label map, '
            f'e.g. {unlabelled[0]}{hint}')
    allowed, how = readable_values(dataset)
    seen: set = set()
    for path in spread(labelled, args.samples):
        values, why = label_values(path)
        if values is None:
            report.problems.append(f'label map {path}: {why}')
            continue
        seen |= values
        outside = sorted(values - allowed)
        if outside:
            report.problems.append(
                f'label map {path} holds {_values(outside)}, values the '
                f'dataset does not read (it reads {_values(sorted(allowed))}:'
                f' {how})')
    if seen:
        report.lines.append(
            f'label values in {min(len(labelled), args.samples)} sampled '
            f'maps: {_values(sorted(seen))} (the dataset reads '
            f'{_values(sorted(allowed))}: {how})')
    return report


def check(name: str, args: argparse.Namespace) -> Tuple[str, List[str]]:
    """``(status, report lines)`` of one dataset: status ``ready``,
    ``missing`` (nothing to read) or ``incomplete``."""
    spec = CHECKS[name]
    parts = dataset_cfgs(spec)
    if len(parts) != len(spec.expected):
        raise RuntimeError(
            f'{spec.config} reads {len(parts)} dataset(s), CHECKS[{name!r}] '
            f'expects {len(spec.expected)}: update tools/check_datasets.py')
    reports = [check_part(part, expected, args, MAKERS.get(name))
               for part, expected in zip(parts, spec.expected)]
    lines = [line for r in reports for line in r.lines]
    for problem in (p for r in reports for p in r.problems):
        # the parts of a ConcatDataset may share a missing root
        if f'LACKS: {problem}' not in lines:
            lines.append(f'LACKS: {problem}')
    if any(r.missing for r in reports):
        status = 'missing'
    elif any(r.problems for r in reports):
        status = 'incomplete'
    else:
        status = 'ready'
    if status != 'ready':
        lines.append(f'how to make it: {GUIDE}#{spec.guide}')
    return status, lines


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    names = args.only or list(CHECKS)
    print(f'[datasets] data root {args.data_root}'
          + ('' if osp.isdir(args.data_root) else ' (no such folder)'))
    statuses = {}
    for name in names:
        spec = CHECKS[name]
        status, lines = check(name, args)
        statuses[name] = status
        print(f'[datasets] {name}: {status.upper()}  {spec.title} '
              f'({spec.config})')
        for line in lines:
            print(f'[datasets]     {line}')
    ready = [n for n in names if statuses[n] == 'ready']
    not_ready = [n for n in names if statuses[n] != 'ready']
    print(f'[datasets] ready: {", ".join(ready) or "none"}; not ready: '
          f'{", ".join(not_ready) or "none"}'
          + (f' (see {GUIDE})' if not_ready else ''))
    return 1 if not_ready else 0


if __name__ == '__main__':
    sys.exit(main())
