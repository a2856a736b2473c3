"""MaskCLIP, SCLIP, ClearCLIP, NACLIP, SC-CLIP, ProxyCLIP on the toy ViT
CLIP (toy-method-table).

    python tools/toy_method_table.py [--work-dir work_dirs/toy]
                                     [--data-seeds 0 1] [--no-pamr]
                                     [--methods MaskCLIP ProxyCLIP ...]
                                     [--vfm FILE]
                                     [--clip FILE] [--csv FILE] [--verbose]
                                     [--cfg-options k=v ...]

The trained toy ViT CLIP (``TOY_CLIP_RECIPES['ViT']``, trained once and
cached as ``tools/toy_demo.py`` does; ``--clip`` another file of the same
shape) and, for each data seed, the toy dataset generated from it; then each
method's toy config (``configs/toy/<method>_vit_toy.py`` for maskclip,
sclip, clearclip, naclip, scclip, proxyclip: the same CLIP, only the last
block and the method's settings differ; ProxyCLIP's vision foundation model
is the toy VFM, trained once without labels on data seed 0's training
images, ``denseclip/toy/vfm_training.py``, and used for every seed; and MaskCLIP without the residual and the FFN, as
ClearCLIP's code runs it) through mmengine's test loop on the validation
split, without and with PAMR (when the training-free segmentor has it).
Prints one markdown table (mIoU per method and data seed, and the CLIP's
caption retrieval), optionally a CSV, and returns the numbers. Both record
what the numbers were measured on: the CLIP file (path, SHA-256), each data
seed's dataset (its own folder, ``WORK_DIR/ade`` or ``ade_seed<N>``: root,
images and a fingerprint of its file list) and the options.
``--cfg-options`` applies to every config (another test scale, slide
inference, ...). Each run's log goes to its work dir; third-party warnings
that say nothing about the runs are not printed (``--verbose``: they are).
"""
import argparse
import contextlib
import csv
import inspect
import io
import itertools
import os
import os.path as osp
import sys
import time
from typing import Dict, List, Optional, Sequence

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

METHODS = ('MaskCLIP', 'SCLIP', 'ClearCLIP', 'NACLIP', 'SC-CLIP',
           'ProxyCLIP')
# MaskCLIP as ClearCLIP's code runs it: the value path alone, which tells
# what the residual and the FFN do apart from the kind of attention
PLAIN_MASKCLIP = 'MaskCLIP w/o residual, FFN'
ROWS = METHODS[:1] + (PLAIN_MASKCLIP, ) + METHODS[1:]
CONFIGS = {
    name: osp.join(REPO, 'configs', 'toy',
                   f'{name.lower().replace("-", "")}_vit_toy.py')
    for name in METHODS
}
CONFIGS[PLAIN_MASKCLIP] = CONFIGS['MaskCLIP']
ROW_OPTIONS = {
    PLAIN_MASKCLIP: {'model.backbone.dense_last_block.residual': False,
                     'model.backbone.dense_last_block.ffn': False}
}
# NACLIP's default refinement (10 iterations, dilations 8 and 16)
PAMR = dict(type='PAMR', num_iter=10, dilations=(8, 16))
# unique experiment / visualizer names for the runs of this process: mmengine
# keeps its logger, visualizer and message hub as global instances by name
# (a second run of one name got the first run's visualizer, with a warning)
_RUN_IDS = itertools.count()


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(
        description='MaskCLIP / SCLIP / ClearCLIP / NACLIP / SC-CLIP '
        '(without and with PAMR) on the trained toy ViT CLIP')
    parser.add_argument('--work-dir', default=osp.join('work_dirs', 'toy'),
                        help='toy files and run outputs (default: '
                        'work_dirs/toy, shared with tools/toy_demo.py)')
    parser.add_argument('--data-seeds', type=int, nargs='+', default=[0, 1],
                        help='seeds of the toy datasets (default: 0 1)')
    parser.add_argument('--no-pamr', action='store_true',
                        help='only the rows without PAMR')
    parser.add_argument('--methods', nargs='+', choices=METHODS,
                        default=list(METHODS),
                        help='the methods\' rows (default: all; MaskCLIP '
                        'brings its row without residual and FFN)')
    parser.add_argument('--clip', default=None,
                        help='a toy ViT CLIP file of TRAINED_VIT\'s shape '
                        'to use instead of the trained recipe')
    parser.add_argument('--vfm', default=None,
                        help='a VFM file for ProxyCLIP instead of the toy '
                        'VFM (trained once on data seed 0)')
    parser.add_argument('--csv', default=None, help='also write the table '
                        'as CSV (method, pamr, data seed, mIoU)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        default={}, help='config overrides for every method')
    parser.add_argument('--verbose', action='store_true',
                        help='also print third-party warnings')
    return parser.parse_args(argv)


def segmentor_has_pamr() -> bool:
    """Whether the training-free segmentor takes a ``pamr`` setting."""
    from denseclip.models.segmentors.training_free_segmentor import \
        TrainingFreeSegmentor
    return 'pamr' in inspect.signature(TrainingFreeSegmentor).parameters


def test_method(config: str, clip_file: str, data_root: str, work_dir: str,
                pamr: bool, options: Dict) -> Dict[str, float]:
    """Metrics of one toy method config (mmengine's test loop in this
    process; its log goes to ``work_dir``)."""
    from mmengine.config import Config
    from mmengine.runner import Runner
    cfg = Config.fromfile(config)
    cfg.model.backbone.pretrained = clip_file
    cfg.model.decode_head.clip_pretrained = clip_file
    if pamr:
        cfg.model.pamr = dict(PAMR)
    for loader in (cfg.val_dataloader, cfg.test_dataloader):
        loader.dataset.data_root = data_root
        loader.num_workers = 0
        loader.persistent_workers = False
    cfg.merge_from_dict(options)
    cfg.work_dir = work_dir
    cfg.log_level = 'WARNING'
    run_id = f'toy_method_table_{os.getpid()}_{next(_RUN_IDS)}'
    cfg.experiment_name = run_id
    cfg.visualizer.name = run_id
    with contextlib.redirect_stdout(io.StringIO()):
        return Runner.from_cfg(cfg).test()


def data_record(data_root: str) -> Dict:
    """Root, images and file-list fingerprint of the toy validation split
    the methods are tested on."""
    from mmengine.config import Config

    from denseclip.utils.measured_on import dataset_record
    dataset = Config.fromfile(CONFIGS['MaskCLIP']).test_dataloader.dataset
    return dataset_record(dict(dataset, data_root=data_root),
                          f'the toy data under {data_root}')


def measured_on_note(measured_on: Dict) -> str:
    """A line naming the CLIP file, each seed's data and the options."""
    from denseclip.utils.measured_on import describe
    data = '; '.join(f'data seed {seed}: {describe(record)}'
                     for seed, record in measured_on['data'].items())
    options = ' '.join(measured_on['cfg_options']) or 'none'
    vfm = (f'; VFM {describe(measured_on["vfm"])}'
           if measured_on.get('vfm') else '')
    return (f'Measured on CLIP {describe(measured_on["clip"])}{vfm}; '
            f'{data}; --cfg-options: {options}.')


def chosen_rows(methods: Sequence[str]) -> List[str]:
    """The table's rows for ``methods``, in :data:`ROWS`' order."""
    return [row for row in ROWS if row in methods or
            (row == PLAIN_MASKCLIP and 'MaskCLIP' in methods)]


def markdown_table(results: Dict[tuple, float], seeds: Sequence[int],
                   pamr_rows: Sequence[bool], retrieval: float,
                   num_val: int, measured_on: Optional[Dict] = None,
                   rows: Sequence[str] = ROWS) -> str:
    """One row per method (and per method + PAMR), one column per seed;
    under it, what they were measured on."""
    lines = ['| method | ' + ' | '.join(f'data seed {s}' for s in seeds) +
             ' | mean |', '|---|' + '---|' * (len(seeds) + 1)]
    for pamr in pamr_rows:
        for method in rows:
            values = [results[(method, pamr, s)] for s in seeds]
            lines.append(f'| {method}{" + PAMR" if pamr else ""} | ' +
                         ' | '.join(f'{v:.1f}' for v in values) +
                         f' | {sum(values) / len(values):.1f} |')
    lines.append(f'\nmIoU (%) on the {num_val} toy validation images of each '
                 'seed (5 classes, chance about 20); the toy ViT CLIP matches '
                 f'held-out images to their captions at {retrieval:.1%} '
                 '(chance 6%).')
    if measured_on:
        lines.append(measured_on_note(measured_on))
    return '\n'.join(lines)


def write_csv(path: str, results: Dict[tuple, float],
              measured_on: Dict) -> None:
    """One row per number, with the CLIP file, the data and the options it
    was measured on."""
    from denseclip.utils.atomic_files import atomic_path
    clip = measured_on['clip']
    options = ' '.join(measured_on['cfg_options'])
    with atomic_path(path) as tmp, open(tmp, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['method', 'pamr', 'data_seed', 'mIoU', 'clip',
                         'clip_sha256', 'data_root', 'data_images',
                         'data_fingerprint', 'cfg_options'])
        for (method, pamr, seed), miou in sorted(results.items()):
            data = measured_on['data'][seed]
            writer.writerow([method, int(pamr), seed, f'{miou:.2f}',
                             clip['path'], clip['sha256'], data['root'],
                             data['images'], data['fingerprint'], options])


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    args = parse_args(argv)
    from denseclip.utils.tool_output import quiet_warnings
    with quiet_warnings(args.verbose):
        return run(args)


def run(args: argparse.Namespace) -> Dict:
    """The table of parsed ``args``: results, retrieval and the markdown."""
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    import denseclip  # noqa: F401  (registers the modules)
    from denseclip.toy.clip_training import content_retrieval_accuracy
    from denseclip.toy.files import (DATA, prepare_toy_files,
                                     prepare_trained_clip)
    start = time.time()
    work_dir = osp.abspath(args.work_dir)
    pamr_rows: List[bool] = [False]
    if not args.no_pamr:
        if segmentor_has_pamr():
            pamr_rows.append(True)
        else:
            print('the training-free segmentor has no pamr setting: rows '
                  'without PAMR only', flush=True)
    if args.clip is None:
        trained = prepare_trained_clip(work_dir, 'ViT')
        clip_file, retrieval = trained.clip_file, trained.retrieval
    else:
        from denseclip.toy.clip_model import TRAINED_VIT, OpenAICLIP
        from denseclip.clip.checkpoint import load_clip_checkpoint
        clip_file = osp.abspath(args.clip)
        model = OpenAICLIP(**TRAINED_VIT)
        model.load_state_dict(load_clip_checkpoint(clip_file))
        retrieval = content_retrieval_accuracy(model)
    print(f'toy ViT CLIP {clip_file}: retrieval {retrieval:.1%}', flush=True)
    from denseclip.utils.measured_on import file_record
    results: Dict[tuple, float] = {}
    measured_on = dict(clip=file_record(clip_file), data={},
                       cfg_options=[f'{k}={v}' for k, v in
                                    args.cfg_options.items()])
    rows = chosen_rows(args.methods)
    row_options = {row: dict(ROW_OPTIONS.get(row, {})) for row in rows}
    if 'ProxyCLIP' in rows:  # the toy VFM, trained once (data seed 0)
        from denseclip.toy.vfm_training import train_toy_vfm
        vfm_file = (osp.abspath(args.vfm) if args.vfm else
                    train_toy_vfm(work_dir, data_seed=0))
        measured_on['vfm'] = file_record(vfm_file)
        row_options['ProxyCLIP']['model.vfm.pretrained'] = vfm_file
    for seed in args.data_seeds:
        files = prepare_toy_files(work_dir, seed)
        measured_on['data'][seed] = data_record(files.data_root)
        for pamr in pamr_rows:
            for method in rows:
                t = time.time()
                metrics = test_method(
                    CONFIGS[method], clip_file, files.data_root,
                    osp.join(work_dir, 'method_table', f'seed{seed}'), pamr,
                    dict(row_options[method], **args.cfg_options))
                results[(method, pamr, seed)] = metrics['mIoU']
                pamr_note = '+ PAMR' if pamr else ''
                print(f'seed {seed}  {method:26s} {pamr_note:6s} mIoU'
                      f' {metrics["mIoU"]:5.1f}  aAcc '
                      f'{metrics["aAcc"]:5.1f}  ({time.time() - t:.0f} s)',
                      flush=True)
    table = markdown_table(results, args.data_seeds, pamr_rows, retrieval,
                           DATA['num_val'], measured_on, rows)
    print('\n' + table)
    if args.csv:
        write_csv(args.csv, results, measured_on)
        print(f'\nwrote {args.csv}')
    print(f'\nwall time {time.time() - start:.0f} s')
    return dict(results=results, retrieval=retrieval, table=table,
                measured_on=measured_on)


if __name__ == '__main__':
    main()
