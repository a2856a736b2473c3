"""Measure the toy MaskCLIP / MaskCLIP+ table of docs/maskclip.md (``make maskclip-table``).

    python tools/toy_maskclip_table.py [--work-dir work_dirs/toy]
                                       [--data-seeds 0 1] [--no-plus]
                                       [--verbose]

For each data seed (the toy dataset generated from it, ``tools/toy_demo.py
--data-seed``): MaskCLIP on the trained toy RN and ViT CLIPs
(``configs/toy/maskclip_toy.py``, ``maskclip_vit_toy.py``) without and with
key smoothing (``ks_thresh=1.0``), prompt denoising (``pd_thresh=0.5``) and
both, each through mmengine's test loop on the toy validation split; then
MaskCLIP+ (``configs/toy/maskclip_plus_toy.py``) trained on its MaskCLIP
teacher's pseudo labels and tested, through ``tools/toy_demo.py``. The toy
files are written or reused as ``tools/toy_demo.py`` does (each data seed in
its own folder). Prints one markdown table (mIoU), with a note of what it was
measured on (the toy CLIP files by their SHA-256, each seed's data root and
the fingerprint of its file list), and returns the numbers; third-party
warnings that say nothing about the runs are not printed (``--verbose``:
they are).
"""
import argparse
import contextlib
import io
import itertools
import os
import os.path as osp
import sys
import time
from typing import Dict, Optional, Sequence

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, osp.join(REPO, 'tools'))

MASKCLIP_CONFIGS = {
    'RN': osp.join(REPO, 'configs', 'toy', 'maskclip_toy.py'),
    'ViT': osp.join(REPO, 'configs', 'toy', 'maskclip_vit_toy.py'),
}
PLUS_CONFIG = osp.join(REPO, 'configs', 'toy', 'maskclip_plus_toy.py')
# (column, ks_thresh, pd_thresh): the reference's thresholds
VARIANTS = [('MaskCLIP', 0., 0.), ('+ key smoothing', 1.0, 0.),
            ('+ prompt denoising', 0., 0.5), ('+ both', 1.0, 0.5)]
# unique experiment / visualizer names for the runs of this process: mmengine
# keeps its logger, visualizer and message hub as global instances by name
_RUN_IDS = itertools.count()


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Measure MaskCLIP (RN, ViT; ks, pd) and MaskCLIP+ on '
        'the toy problem with trained toy CLIPs')
    parser.add_argument('--work-dir', default=osp.join('work_dirs', 'toy'),
                        help='toy files and run outputs (default: '
                        'work_dirs/toy, shared with tools/toy_demo.py)')
    parser.add_argument('--data-seeds', type=int, nargs='+', default=[0, 1],
                        help='seeds of the toy datasets (default: 0 1)')
    parser.add_argument('--no-plus', action='store_true',
                        help='MaskCLIP only, no MaskCLIP+ training')
    parser.add_argument('--verbose', action='store_true',
                        help='also print third-party warnings')
    return parser.parse_args(argv)


def test_maskclip(config: str, clip_file: str, data_root: str,
                  work_dir: str, ks: float, pd: float) -> float:
    """mIoU of a toy MaskCLIP config with these thresholds (mmengine's
    test loop, in this process; its log goes to ``work_dir``)."""
    from mmengine.config import Config
    from mmengine.runner import Runner
    cfg = Config.fromfile(config)
    cfg.model.backbone.pretrained = clip_file
    cfg.model.decode_head.update(clip_pretrained=clip_file, ks_thresh=ks,
                                 pd_thresh=pd)
    for loader in (cfg.val_dataloader, cfg.test_dataloader):
        loader.dataset.data_root = data_root
    cfg.work_dir = work_dir
    cfg.log_level = 'WARNING'
    run_id = f'toy_maskclip_table_{os.getpid()}_{next(_RUN_IDS)}'
    cfg.experiment_name = run_id
    cfg.visualizer.name = run_id
    with contextlib.redirect_stdout(io.StringIO()):
        metrics = Runner.from_cfg(cfg).test()
    return metrics['mIoU']


def measured_on_note(clips: Dict[str, Dict], data: Dict[int, Dict]) -> str:
    """A line naming the toy CLIP files and each seed's data."""
    from denseclip.utils.measured_on import describe
    return 'Measured on ' + '; '.join(
        [f'toy {family} CLIP {describe(record)}'
         for family, record in clips.items()] +
        [f'data seed {seed}: {describe(record)}'
         for seed, record in data.items()]) + '.'


def markdown_table(results: Dict[int, Dict[str, Dict[str, float]]],
                   num_val: int, note: str = '') -> str:
    """One row per toy CLIP and data seed; MaskCLIP+ beside its teacher;
    under it ``note`` (what it was measured on)."""
    seeds = sorted(results)
    lines = ['| toy CLIP | data seed | ' +
             ' | '.join(name for name, _, _ in VARIANTS) +
             ' | MaskCLIP+ (student) |',
             '|---|---|' + '---|' * (len(VARIANTS) + 1)]
    for family in MASKCLIP_CONFIGS:
        for seed in seeds:
            row = results[seed][family]
            plus = row.get('MaskCLIP+')
            cells = [f'{row[name]:.1f}' for name, _, _ in VARIANTS]
            lines.append(f'| {family} | {seed} | ' + ' | '.join(cells) +
                         f' | {"–" if plus is None else f"{plus:.1f}"} |')
    lines.append(f'\nmIoU (%) on the {num_val} toy validation images of each '
                 'seed; chance is about 20.')
    if note:
        lines.append(note)
    return '\n'.join(lines)


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    args = parse_args(argv)
    from denseclip.utils.tool_output import quiet_warnings
    with quiet_warnings(args.verbose):
        return run(args)


def run(args: argparse.Namespace) -> Dict:
    """The table of parsed ``args``; the numbers per seed and toy CLIP."""
    import toy_demo
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    start = time.time()
    work_dir = osp.abspath(args.work_dir)
    from mmengine.config import Config

    from denseclip.utils.measured_on import dataset_record, file_record
    results: Dict[int, Dict[str, Dict[str, float]]] = {}
    clips: Dict[str, Dict] = {}
    data: Dict[int, Dict] = {}
    for seed in args.data_seeds:
        files = toy_demo.prepare_toy_files(work_dir, seed)
        # every family's config reads the same toy test split
        first_config = next(iter(MASKCLIP_CONFIGS.values()))
        dataset = Config.fromfile(first_config).test_dataloader
        data[seed] = dataset_record(
            dict(dataset.dataset, data_root=files.data_root),
            f'the toy data under {files.data_root}')
        results[seed] = {}
        for family, config in MASKCLIP_CONFIGS.items():
            trained = toy_demo.prepare_trained_clip(work_dir, family)
            clips[family] = file_record(trained.clip_file)
            row = results[seed][family] = {}
            for name, ks, pd in VARIANTS:
                t = time.time()
                row[name] = test_maskclip(
                    config, trained.clip_file, files.data_root,
                    osp.join(work_dir, 'table', f'seed{seed}', family), ks,
                    pd)
                print(f'seed {seed}  MaskCLIP {family:3s} {name:20s} mIoU '
                      f'{row[name]:5.1f}  ({time.time() - t:.0f} s)',
                      flush=True)
        if not args.no_plus:
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                plus = toy_demo.main(['--config', PLUS_CONFIG, '--work-dir',
                                      work_dir, '--data-seed', str(seed)] +
                                     (['--verbose'] if args.verbose else []))
            results[seed]['RN']['MaskCLIP+'] = plus['metrics']['mIoU']
            print(f'seed {seed}  MaskCLIP+ (student of MaskCLIP RN) mIoU '
                  f'{plus["metrics"]["mIoU"]:5.1f}  ({plus["wall_s"]:.0f} s)',
                  flush=True)
    table = markdown_table(results, toy_demo.DATA['num_val'],
                           measured_on_note(clips, data))
    print('\n' + table)
    print(f'\nwall time {time.time() - start:.0f} s')
    return results


if __name__ == '__main__':
    main()
