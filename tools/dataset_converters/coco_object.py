"""Make COCO-Object's label maps from COCO-Stuff 164k's.

    python tools/dataset_converters/coco_object.py data/coco_stuff164k
    python tools/dataset_converters/coco_object.py data/coco_stuff164k \\
        --splits val2017 train2017 --nproc 8

COCO-Object is the benchmark of the training-free open-vocabulary protocol
(GroupViT, TCL, SCLIP, ClearCLIP, NACLIP): COCO-Stuff 164k's images with
81 classes, 0 background and 1..80 COCO's things in COCO-Stuff's order. Its
labels are made from COCO-Stuff's, as the references' ``cvt_coco_object.py``
makes them (not from COCO's instance annotations):

    COCO-Stuff 164k (mmseg's ``<id>_labelTrainIds.png``)  ->  COCO-Object
      0..79    the 80 things                                    1..80
      80..170  the 91 stuff classes                             0 (background)
      255      unlabeled                                        0 (background)

Unlabeled pixels become background, as in the references, whose numbers are
measured that way (their loop maps every COCO-Stuff id above 90, 255
included, to 0); ``--unlabeled ignore`` keeps them 255 (not counted) instead.

``--source raw`` reads COCO-Stuff's own ``stuffthingmaps`` PNGs (``<id>.png``,
COCO category id - 1: things 0..90 with 11 unused ids, stuff 91..181, 255
unlabeled) as the references do; both sources give the same files.

Each label map is written as ``<id>_instanceTrainIds.png`` (the references'
name, read by ``COCOObjectDataset``) beside its input, or under
``--out-dir/annotations/<split>/``; images are not copied. Files are written
atomically (a killed run leaves complete files or none) and existing ones are
skipped, so a second run resumes where the first stopped (``--overwrite`` to
redo them). A label map with a value outside its source's classes stops the
run with the file named.
"""
import argparse
import glob
import importlib.util
import multiprocessing
import os
import os.path as osp
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _atomic_files():
    """``denseclip.utils.atomic_files`` (standard library only): this
    checkout's file on its own when the package is not imported yet, so the
    converter needs neither torch nor an install; else the package's."""
    path = osp.join(REPO, 'denseclip', 'utils', 'atomic_files.py')
    if 'denseclip' in sys.modules or not osp.isfile(path):
        return importlib.import_module('denseclip.utils.atomic_files')
    spec = importlib.util.spec_from_file_location('_denseclip_atomic_files',
                                                  path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


atomic_path = _atomic_files().atomic_path

OUT_SUFFIX = '_instanceTrainIds.png'
SOURCES = {
    # source: (file pattern in annotations/<split>/, suffix to strip)
    'mmseg': ('*_labelTrainIds.png', '_labelTrainIds.png'),
    'raw': ('*.png', '.png'),
}
# COCO-Stuff 164k's images per split (the references assert their sum)
EXPECTED_COUNTS = {'train2017': 118287, 'val2017': 5000}
# 0-based COCO category ids 0..90 that no thing uses (COCO's 91 thing ids
# minus the 80 annotated ones); raw stuff ids are 91..181
RAW_UNUSED_THING_IDS = (11, 25, 28, 29, 44, 65, 67, 68, 70, 82, 90)
BAD = -1


class LabelFileError(ValueError):
    """A COCO-Stuff label map that cannot be converted; names the file."""


def lookup_table(source: str, unlabeled: str) -> np.ndarray:
    """The 256-entry table from a ``source`` label value to COCO-Object's
    (``BAD`` for values the source never uses)."""
    table = np.full(256, BAD, dtype=np.int16)
    if source == 'mmseg':
        table[0:80] = np.arange(1, 81)
        table[80:171] = 0
    elif source == 'raw':
        things = [i for i in range(91) if i not in RAW_UNUSED_THING_IDS]
        assert len(things) == 80
        table[things] = np.arange(1, 81)
        table[91:182] = 0
    else:
        raise ValueError(f'source must be one of {sorted(SOURCES)}, '
                         f'got {source!r}')
    if unlabeled not in ('background', 'ignore'):
        raise ValueError("unlabeled must be 'background' or 'ignore', "
                         f'got {unlabeled!r}')
    table[255] = 0 if unlabeled == 'background' else 255
    return table


def convert_label(label: np.ndarray, table: np.ndarray,
                  path: str) -> np.ndarray:
    """COCO-Stuff labels -> COCO-Object labels (uint8); ``path`` names the
    file in the error a bad label map raises."""
    if label.ndim != 2 or label.dtype != np.uint8:
        raise LabelFileError(
            f'{path}: expected a single-channel 8-bit label map, got an '
            f'array of shape {label.shape} and dtype {label.dtype}')
    out = table[label]
    if (out == BAD).any():
        bad = np.unique(label[out == BAD]).tolist()
        raise LabelFileError(
            f'{path}: label values {bad[:10]} are not COCO-Stuff classes '
            '(mmseg labels: 0..170; raw: COCO ids - 1; 255 unlabeled)')
    return out.astype(np.uint8)


def read_label(path: str) -> np.ndarray:
    """A label map as mmseg's ``LoadAnnotations`` reads it (Pillow,
    unchanged: palette PNGs give their indices)."""
    try:
        with Image.open(path) as img:
            return np.array(img)
    except (OSError, SyntaxError, ValueError) as e:
        raise LabelFileError(f'{path}: cannot read the label map: {e}') \
            from None


def write_label(label: np.ndarray, path: str) -> None:
    """Write a 2-D uint8 array as a grayscale PNG, atomically."""
    with atomic_path(path) as tmp:
        Image.fromarray(label).save(tmp, format='PNG')


def output_path(in_path: str, suffix: str, out_dir: Optional[str]) -> str:
    """``<folder>/<id>_instanceTrainIds.png`` for ``<folder>/<id><suffix>``;
    with ``out_dir``, the folder is ``out_dir/annotations/<split>``."""
    folder, name = osp.split(in_path)
    stem = name[:-len(suffix)]
    if out_dir is not None:
        folder = osp.join(out_dir, 'annotations', osp.basename(folder))
    return osp.join(folder, stem + OUT_SUFFIX)


def convert_file(job: Tuple[str, str, np.ndarray, bool]) -> str:
    """Convert one file; returns ``'written'`` or ``'skipped'``."""
    in_path, out_path, table, overwrite = job
    if not overwrite and osp.exists(out_path):
        return 'skipped'
    write_label(convert_label(read_label(in_path), table, in_path), out_path)
    return 'written'


def list_inputs(root: str, split: str, source: str) -> List[str]:
    """The split's COCO-Stuff label maps of ``source``, sorted."""
    pattern, _ = SOURCES[source]
    files = glob.glob(osp.join(root, 'annotations', split, pattern))
    if source == 'raw':  # <id>.png only, not the converters' outputs
        files = [f for f in files if 'TrainIds' not in osp.basename(f)]
    return sorted(files)


class Progress:
    """Prints ``done/total`` about every 5% and at least every 10 s."""

    def __init__(self, name: str, total: int, out=None) -> None:
        self.name, self.total = name, total
        self.out = out if out is not None else sys.stdout
        self.counts: Dict[str, int] = {'written': 0, 'skipped': 0}
        self.start = self.last = time.monotonic()
        self.step = max(1, total // 20)

    def update(self, status: str) -> None:
        self.counts[status] += 1
        done = sum(self.counts.values())
        now = time.monotonic()
        if done % self.step == 0 or done == self.total or \
                now - self.last >= 10:
            self.last = now
            rate = done / max(now - self.start, 1e-9)
            print(f'[coco_object] {self.name}: {done}/{self.total} '
                  f'({100 * done / self.total:.0f}%), '
                  f"{self.counts['written']} written, "
                  f"{self.counts['skipped']} already there, "
                  f'{rate:.1f} files/s', file=self.out, flush=True)


def convert_split(root: str, split: str, source: str = 'mmseg',
                  unlabeled: str = 'background',
                  out_dir: Optional[str] = None, nproc: int = 1,
                  overwrite: bool = False, out=None) -> Dict[str, int]:
    """Convert one split; returns the counts of written and skipped files."""
    out = out if out is not None else sys.stdout
    inputs = list_inputs(root, split, source)
    if not inputs:
        hint = ("run mmseg's tools/dataset_converters/coco_stuff164k.py "
                'first, or give --source raw' if source == 'mmseg' else
                "COCO-Stuff's stuffthingmaps_trainval2017.zip unpacks there")
        raise FileNotFoundError(
            f'no COCO-Stuff label maps ({SOURCES[source][0]}) in '
            f"{osp.join(root, 'annotations', split)}: {hint}")
    expected = EXPECTED_COUNTS.get(split)
    if expected is not None and len(inputs) != expected:
        print(f'[coco_object] note: {split} has {len(inputs)} label maps, '
              f'COCO-Stuff 164k has {expected}', file=out, flush=True)
    table = lookup_table(source, unlabeled)
    suffix = SOURCES[source][1]
    jobs = [(f, output_path(f, suffix, out_dir), table, overwrite)
            for f in inputs]
    for folder in sorted({osp.dirname(j[1]) for j in jobs}):
        os.makedirs(folder, exist_ok=True)
    progress = Progress(split, len(jobs), out)
    if nproc > 1:
        with multiprocessing.Pool(nproc) as pool:
            for status in pool.imap_unordered(convert_file, jobs,
                                              chunksize=16):
                progress.update(status)
    else:
        for job in jobs:
            progress.update(convert_file(job))
    return progress.counts


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='COCO-Stuff 164k label maps -> COCO-Object '
        '(0 background, 1..80 things)')
    parser.add_argument('root', help='COCO-Stuff 164k root, with '
                        'annotations/<split>/ (e.g. data/coco_stuff164k)')
    parser.add_argument('--splits', nargs='+', default=['val2017'],
                        help='splits to convert (default: val2017, the '
                        'benchmark; add train2017 for all)')
    parser.add_argument('--source', choices=sorted(SOURCES), default='mmseg',
                        help="mmseg: <id>_labelTrainIds.png (0..170, mmseg's "
                        'coco_stuff164k.py); raw: COCO-Stuff\'s <id>.png')
    parser.add_argument('--unlabeled', choices=['background', 'ignore'],
                        default='background',
                        help="COCO-Stuff's unlabeled pixels (255): "
                        'background as the references (default), or ignore')
    parser.add_argument('--out-dir', help='write under OUT_DIR/annotations/'
                        '<split>/ instead of beside the inputs')
    parser.add_argument('--nproc', type=int, default=1,
                        help='worker processes (default 1)')
    parser.add_argument('--overwrite', action='store_true',
                        help='rewrite files that already exist')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    try:
        for split in args.splits:
            counts = convert_split(args.root, split, args.source,
                                   args.unlabeled, args.out_dir, args.nproc,
                                   args.overwrite)
            print(f"[coco_object] {split} done: {counts['written']} written, "
                  f"{counts['skipped']} already there", flush=True)
    except (LabelFileError, FileNotFoundError) as e:
        print(f'[coco_object] error: {e}', file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
