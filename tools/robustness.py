"""Robustness of any config under input corruptions: types x levels + clean.

    python tools/robustness.py CONFIG [CHECKPOINT] [--corruptions NAME ...]
                               [--severities L ...] [--work-dir DIR]
                               [--metric mIoU] [--tta] [--verbose]
                               [--cfg-options k=v ...]

Each cell (the clean run, then every type at every level) is one test run
through ``tools/test.py``'s own ``main`` (``--corrupt NAME --severity L``),
in this process, with its own work dir under ``DIR/cells/``. After each
cell the metrics are saved to ``DIR/robustness.json`` (written atomically):
an interrupted sweep run again skips the cells already measured, and so does
a sweep extended with more types or levels. The file records what the cells
were measured on (the config as resolved, the checkpoint and the weight /
CLIP files it names by their SHA-256, the test data's root and the
fingerprint of its file list, the options): a resumed sweep measured on
anything else is an error naming what differs, not a mix. ``--tta`` keeps
its own results beside (``robustness_tta.*``, ``cells_tta/``). At the end
(and after every cell) it writes ``robustness.csv``, ``robustness.md`` (a
table: types x levels, the mean per type and per level, the clean run) and
``robustness.png`` (the metric against the level, one line per type, the
clean run as a dashed line), each replacing the last only once all three
are complete.

Before anything runs, the config, the checkpoint and ``--metric`` (one of
those the config's test evaluator reports) are checked; a mistake is an
error naming it, and leaves no work dir behind.

``--corruptions``: names from ``denseclip.datasets.CORRUPTIONS``, ``all``
(the 19) or ``reference`` (MaskCLIP's 8, the default). The runs' own logs go
to their work dirs; ``--verbose`` also prints them.
"""
import argparse
import contextlib
import csv
import difflib
import gc
import io
import itertools
import numbers
import os
import os.path as osp
import sys
import time
from typing import Any, Dict, List, Optional, Sequence

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)  # run from a checkout without an install too
from denseclip.datasets.corrupt import (CORRUPTIONS,  # noqa: E402
                                        REFERENCE_CORRUPTIONS, SEVERITIES)
from denseclip.utils.atomic_files import (atomic_path,  # noqa: E402
                                          write_json_atomic)
from denseclip.utils.console_logging import \
    console_follows_stdout  # noqa: E402
from denseclip.utils.measured_on import (config_sha256,  # noqa: E402
                                         dataset_record, describe,
                                         file_record, weight_records)
from denseclip.utils.results_file import (  # noqa: E402
    ResultsFileError, load_results as load_results_file)

TOOL = 'robustness'
CLEAN = 'clean'
# what IoUMetric reports for each of its iou_metrics (besides aAcc)
IOU_METRIC_NAMES = {'mIoU': ('mIoU', 'mAcc'), 'mDice': ('mDice', 'mAcc'),
                    'mFscore': ('mFscore', 'mPrecision', 'mRecall')}
# unique experiment / visualizer names for the runs of this process: mmengine
# keeps its logger, visualizer and message hub as global instances by name
_RUN_IDS = itertools.count()


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Sweep corruption types x levels (plus the clean run) '
        'through tools/test.py; resumable; CSV, markdown table, PNG plot')
    parser.add_argument('config', help='test config file')
    parser.add_argument('checkpoint', nargs='?', default=None,
                        help='checkpoint (omit for MaskCLIP, which reads '
                        'its CLIP file)')
    parser.add_argument(
        '--corruptions', nargs='+', default=['reference'], metavar='NAME',
        help='corruption types, or "reference" (MaskCLIP\'s 8: '
        f'{", ".join(REFERENCE_CORRUPTIONS)}; the default) or "all" (the '
        f'{len(CORRUPTIONS)} of the library)')
    parser.add_argument('--severities', nargs='+', type=int,
                        default=list(SEVERITIES), metavar='L',
                        help='levels, 1-5 (default: all five)')
    parser.add_argument('--work-dir',
                        help='results and the runs\' work dirs (default: '
                        'work_dirs/robustness/<config name>)')
    parser.add_argument('--metric', default='mIoU',
                        help='metric of the table and plot, one that the '
                        'config\'s test_evaluator reports (IoUMetric: aAcc, '
                        'mIoU, mAcc; mDice, mFscore, mPrecision, mRecall '
                        'when its iou_metrics has them); checked before '
                        'anything runs (default: mIoU; the CSV has all)')
    parser.add_argument('--tta', action='store_true',
                        help='test with multi-scale + flip (tools/test.py '
                        '--tta); kept apart from the results without it, in '
                        'robustness_tta.{json,csv,md,png} and cells_tta/ of '
                        'the same work dir')
    parser.add_argument('--verbose', action='store_true',
                        help='print the test runs\' logs too')
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        metavar='KEY=VALUE',
                        help='passed to tools/test.py as they are')
    args = parser.parse_args(argv)
    for option in args.cfg_options:
        if '=' not in option:
            parser.error(
                f'--cfg-options takes KEY=VALUE pairs, got {option!r}')
    names: List[str] = []
    for name in args.corruptions:
        expanded = {'reference': REFERENCE_CORRUPTIONS,
                    'all': CORRUPTIONS}.get(name, (name, ))
        for one in expanded:
            if one not in CORRUPTIONS:
                parser.error(f'unknown corruption type {one!r}; valid: '
                             f'{", ".join(CORRUPTIONS)}, or reference, all')
            if one not in names:
                names.append(one)
    args.corruptions = names
    bad = [s for s in args.severities if s not in SEVERITIES]
    if bad:
        parser.error(f'--severities must be in 1-5, got {bad}')
    args.severities = sorted(set(args.severities))
    if args.work_dir is None:
        args.work_dir = osp.join(
            'work_dirs', 'robustness',
            osp.splitext(osp.basename(args.config))[0])
    return args


# ------------------------------------------------------------- results file
def cell_key(name: str, level: int = 0) -> str:
    return CLEAN if name == CLEAN else f'{name}/{level}'


def file_stem(args: argparse.Namespace) -> str:
    """``robustness``, or ``robustness_tta``: each setting its own files."""
    return 'robustness_tta' if args.tta else 'robustness'


def results_path(args: argparse.Namespace) -> str:
    return osp.join(args.work_dir, f'{file_stem(args)}.json')


def cells_dir(args: argparse.Namespace) -> str:
    return osp.join(args.work_dir, 'cells_tta' if args.tta else 'cells')


def load_config(args: argparse.Namespace):
    """The config as the test runs will resolve it (``--cfg-options``
    merged); a missing config or checkpoint is an error naming it."""
    if not osp.isfile(args.config):
        raise SystemExit(f'[robustness] config {args.config} does not '
                         'exist')
    if args.checkpoint and not osp.isfile(args.checkpoint):
        raise SystemExit(f'[robustness] checkpoint {args.checkpoint} does '
                         'not exist')
    from mmengine.config import Config, DictAction
    try:
        cfg = Config.fromfile(args.config)
        if args.cfg_options:
            parser = argparse.ArgumentParser()
            parser.add_argument('--cfg-options', nargs='+',
                                action=DictAction)
            cfg.merge_from_dict(parser.parse_args(
                ['--cfg-options'] + list(args.cfg_options)).cfg_options)
    except Exception as err:  # noqa: BLE001 - named, not a traceback
        raise SystemExit(f'[robustness] cannot read config {args.config} '
                         f'with --cfg-options {args.cfg_options}: '
                         f'{type(err).__name__}: {err}') from err
    if cfg.get('test_dataloader') is None:
        raise SystemExit(f'[robustness] {args.config} has no '
                         'test_dataloader: nothing to sweep')
    return cfg


def reported_metrics(cfg) -> Optional[List[str]]:
    """The metric names the config's ``test_evaluator`` reports, when they
    can be told before a run (IoUMetric and its subclasses); else None."""
    from mmseg.evaluation import IoUMetric
    from mmseg.registry import METRICS

    from denseclip.evaluation import ZeroShotIoUMetric
    evaluator = cfg.get('test_evaluator')
    if isinstance(evaluator, dict) and 'metrics' in evaluator:
        evaluator = evaluator['metrics']  # an Evaluator config
    metrics = evaluator if isinstance(evaluator, (list, tuple)) else [
        evaluator]
    names: List[str] = []
    for metric in metrics:
        if not isinstance(metric, dict):
            return None
        kind = metric.get('type')
        cls = kind if isinstance(kind, type) else METRICS.get(kind)
        if cls is None or not issubclass(cls, IoUMetric):
            return None
        found = ['aAcc']
        for name in metric.get('iou_metrics', ['mIoU']):
            found += IOU_METRIC_NAMES.get(name, ())
        if issubclass(cls, ZeroShotIoUMetric):
            found += ['mIoU_seen', 'mIoU_unseen', 'hIoU']
        prefix = metric.get('prefix')
        names += [f'{prefix}/{n}' if prefix else n for n in found]
    return list(dict.fromkeys(names))


def metric_error(args: argparse.Namespace, available: Sequence[str],
                 source: str) -> str:
    """Why ``--metric`` is none of ``available``, and what to do."""
    message = (f'[robustness] --metric {args.metric}: {source} reports '
               f'{", ".join(available)}; nothing was measured or written')
    iou_name = next((k for k, v in IOU_METRIC_NAMES.items()
                     if args.metric in v), None)
    if iou_name:
        return message + (
            f'. IoUMetric reports {args.metric} when its iou_metrics has '
            f'{iou_name}: add --cfg-options "test_evaluator.iou_metrics='
            f'[mIoU,{iou_name}]"')
    close = difflib.get_close_matches(
        args.metric, list(available) + [n for v in IOU_METRIC_NAMES.values()
                                        for n in v], n=1, cutoff=0.5)
    lowered = [n for n in available if n.lower() == args.metric.lower()]
    guess = (lowered or close or [None])[0]
    return message + (f'. Did you mean --metric {guess}?' if guess else '')


def check_metric(args: argparse.Namespace, cfg) -> bool:
    """An error when ``--metric`` is not one the config's test evaluator
    reports; True when that was checked (False: an evaluator whose names
    are known only after a run)."""
    if cfg.get('test_evaluator') is None:
        raise SystemExit(f'[robustness] {args.config} has no '
                         'test_evaluator: nothing to measure')
    available = reported_metrics(cfg)
    if available is None:
        return False
    if args.metric not in available:
        raise SystemExit(metric_error(
            args, available, f'the test_evaluator of {args.config}'))
    return True


def measured_on(args: argparse.Namespace, cfg,
                known: Optional[Dict]) -> Dict[str, Any]:
    """What every cell is measured on; a results file recorded on anything
    else is not resumed (``known``: its record, whose file hashes are
    reused while the files' size and time are the same)."""
    known = known or {}
    try:
        data = dataset_record(cfg.test_dataloader.dataset,
                              f'test_dataloader.dataset of {args.config}')
    except ValueError as err:
        raise SystemExit(f'[robustness] {err}') from err
    return dict(
        config=osp.abspath(args.config), config_sha256=config_sha256(cfg),
        checkpoint=(file_record(args.checkpoint, known.get('checkpoint'))
                    if args.checkpoint else None),
        weights=weight_records(cfg.get('model'), known.get('weights')),
        data=data, cfg_options=list(args.cfg_options), tta=bool(args.tta))


def load_results(args: argparse.Namespace, cfg) -> Dict:
    """The cells recorded for this sweep (none when there is no file);
    stops on another tool's file, an older format or cells measured on
    something else."""
    try:
        return load_results_file(
            results_path(args), TOOL,
            lambda known: measured_on(args, cfg, known))
    except ResultsFileError as err:
        raise SystemExit(f'[robustness] {err}') from err


# ------------------------------------------------------------------- runs
def _detach_logger(name: str) -> None:
    """Close the handlers of the run's logger: its log file and, without
    ``--verbose``, the console file it was given (it stays registered)."""
    from mmengine.logging import MMLogger
    if MMLogger.check_instance_created(name):
        logger = MMLogger.get_instance(name)
        for handler in list(logger.handlers):
            handler.close()
            logger.removeHandler(handler)


def run_cell(test_tool, args: argparse.Namespace, name: str,
             level: int) -> Dict[str, float]:
    """One test run through ``tools/test.py``'s ``main``; its metrics."""
    key = cell_key(name, level)
    run_id = (f'robustness_{key.replace("/", "_")}_{os.getpid()}_'
              f'{next(_RUN_IDS)}')
    options = list(args.cfg_options) + [
        f'experiment_name={run_id}', f'visualizer.name={run_id}',
        # no worker pools left behind by the runs of this process
        'test_dataloader.persistent_workers=False'
    ]
    cell_dir = osp.join(cells_dir(args), key.replace('/', '_'))
    argv = [args.config] + ([args.checkpoint] if args.checkpoint else []) + [
        '--work-dir', cell_dir
    ] + (['--tta'] if args.tta else []) + (
        ['--corrupt', name, '--severity', str(level)]
        if name != CLEAN else []) + ['--cfg-options'] + options
    os.makedirs(cell_dir, exist_ok=True)
    console = osp.join(cell_dir, 'console.log')
    console_follows_stdout()  # what the run logs goes where it prints
    try:
        if args.verbose:
            metrics = test_tool.main(argv)
        else:  # the run's console output and warnings go to its folder
            with open(console, 'w') as out, contextlib.redirect_stdout(
                    out), contextlib.redirect_stderr(out):
                metrics = test_tool.main(argv)
    except Exception:  # (an interrupt needs no tail)
        if not args.verbose:
            with open(console) as f:
                tail = f.readlines()[-40:]
            print(''.join(tail) + f'[robustness] {key} failed; its output: '
                  f'{console}', file=sys.stderr, flush=True)
        raise
    finally:
        _detach_logger(run_id)
        gc.collect()
    # IoUMetric's values are numpy float32: 90.91, not 90.91000366210938
    return {k: float(str(v)) for k, v in metrics.items()
            if isinstance(v, numbers.Real)}


def load_test_tool():
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        '_denseclip_test_tool', osp.join(REPO, 'tools', 'test.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------- outputs
def _metric(cells: Dict, key: str, metric: str) -> Optional[float]:
    cell = cells.get(key)
    return None if cell is None else cell['metrics'].get(metric)


def _mean(values: Sequence[Optional[float]]) -> Optional[float]:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def _fmt(value: Optional[float]) -> str:
    return '–' if value is None else f'{value:.2f}'


def _cell_order(key: str) -> tuple:
    """Clean first, then the library's order of types, then levels."""
    name, _, level = key.partition('/')
    if name == CLEAN:
        return (-1, 0)
    return (CORRUPTIONS.index(name) if name in CORRUPTIONS else
            len(CORRUPTIONS), int(level or 0))


def csv_text(cells: Dict) -> str:
    """Every cell recorded (also those of earlier, larger sweeps)."""
    metrics = sorted({m for c in cells.values() for m in c['metrics']})
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator='\n')
    writer.writerow(['corruption', 'severity'] + metrics + ['seconds'])
    for key in sorted(cells, key=_cell_order):
        cell = cells[key]
        name, _, level = key.partition('/')
        values = [cell['metrics'].get(m) for m in metrics]
        writer.writerow([name, level or 0] + [
            '' if v is None else round(v, 4) for v in values
        ] + [f'{cell["seconds"]:.1f}'])
    return buf.getvalue()


def markdown_table(cells: Dict, names: Sequence[str],
                   levels: Sequence[int], metric: str) -> str:
    """Types x levels, a mean per type (and its drop from clean) and per
    level; the clean run above."""
    clean = _metric(cells, CLEAN, metric)
    lines = [f'clean: {_fmt(clean)} {metric}', '',
             '| corruption | ' + ' | '.join(f'level {l}' for l in levels) +
             ' | mean | mean - clean |',
             '|---' * (len(levels) + 3) + '|']
    for name in names:
        row = [_metric(cells, cell_key(name, l), metric) for l in levels]
        mean = _mean(row)
        drop = None if mean is None or clean is None else mean - clean
        lines.append(f'| {name} | ' + ' | '.join(map(_fmt, row)) +
                     f' | {_fmt(mean)} | {_fmt(drop)} |')
    per_level = [_mean([_metric(cells, cell_key(n, l), metric)
                        for n in names]) for l in levels]
    mean = _mean(per_level)
    drop = None if mean is None or clean is None else mean - clean
    lines.append('| **mean over types** | ' + ' | '.join(
        map(_fmt, per_level)) + f' | {_fmt(mean)} | {_fmt(drop)} |')
    return '\n'.join(lines) + '\n'


def write_plot(path: str, cells: Dict, names: Sequence[str],
               levels: Sequence[int], metric: str, title: str) -> None:
    """``metric`` against the level, one line per type, clean dashed."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=100)
    try:
        cmap = plt.get_cmap('tab10' if len(names) <= 10 else 'tab20')
        for k, name in enumerate(names):
            points = [(l, _metric(cells, cell_key(name, l), metric))
                      for l in levels]
            points = [(l, v) for l, v in points if v is not None]
            if points:
                ax.plot(*zip(*points), marker='o', color=cmap(k % cmap.N),
                        label=name)
        per_level = [(l, _mean([_metric(cells, cell_key(n, l), metric)
                                for n in names])) for l in levels]
        per_level = [(l, v) for l, v in per_level if v is not None]
        if len(names) > 1 and per_level:
            ax.plot(*zip(*per_level), color='black', linewidth=2.5,
                    label='mean over types')
        clean = _metric(cells, CLEAN, metric)
        if clean is not None:
            ax.axhline(clean, color='grey', linestyle='--', linewidth=1.5,
                       label=f'clean ({clean:.2f})')
        ax.set_xticks(list(levels))
        ax.set_xlabel('severity level')
        ax.set_ylabel(metric)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc='center left', bbox_to_anchor=(1.01, 0.5),
                      fontsize=8)
        fig.tight_layout()
        fig.savefig(path, format='png')
    finally:
        plt.close(fig)


def measured_on_line(on: Dict) -> str:
    """One line naming the data and the weight files the cells were
    measured on (the results file has the whole record)."""
    files = ([('checkpoint', on['checkpoint'])] if on.get('checkpoint')
             else []) + sorted(on.get('weights', {}).items())
    return 'Measured on ' + '; '.join(
        [f'data {describe(on["data"])}'] +
        [f'{key} {describe(record)}' for key, record in files]) + '.'


def write_outputs(args: argparse.Namespace, results: Dict) -> Dict[str, str]:
    """The CSV, the markdown table and the plot, each replacing the last
    only once all three are complete (a failure leaves the old ones)."""
    cells = results['cells']
    names, levels = args.corruptions, args.severities
    stem = file_stem(args)
    paths = {ext: osp.join(args.work_dir, f'{stem}.{ext}')
             for ext in ('csv', 'md', 'png')}
    checkpoint = args.checkpoint or 'no checkpoint'
    title = (f'{osp.basename(args.config)} ({osp.basename(checkpoint)}'
             f'{", TTA" if args.tta else ""}) under corruptions')
    texts = dict(csv=csv_text(cells),
                 md=f'{args.metric} of {title}\n\n'
                 f'{measured_on_line(results["measured_on"])}\n\n' +
                 markdown_table(cells, names, levels, args.metric))
    with contextlib.ExitStack() as stack:
        partial = {ext: stack.enter_context(atomic_path(path))
                   for ext, path in paths.items()}
        for ext, text in texts.items():
            with open(partial[ext], 'w', encoding='utf-8') as f:
                f.write(text)
        write_plot(partial['png'], cells, names, levels, args.metric, title)
    return paths


# ------------------------------------------------------------------- main
def main(argv: Optional[Sequence[str]] = None) -> Dict:
    """Run the sweep; return the results (``cells``: key -> metrics)."""
    args = parse_args(argv)
    cfg = load_config(args)
    metric_checked = check_metric(args, cfg)
    path = results_path(args)
    results = load_results(args, cfg)
    cells = results['cells']
    recorded = sorted({m for c in cells.values() for m in c['metrics']})
    if cells and args.metric not in recorded:
        raise SystemExit(metric_error(args, recorded,
                                      f'the cells of {path}'))
    todo = [(CLEAN, 0)] + [(n, l) for n in args.corruptions
                           for l in args.severities]
    test_tool = None
    start = time.time()
    measured = 0
    print(f'[robustness] {args.config}: {len(todo)} cells (clean + '
          f'{len(args.corruptions)} types x levels '
          f'{",".join(map(str, args.severities))}'
          f'{", TTA" if args.tta else ""}) in {args.work_dir}', flush=True)
    for index, (name, level) in enumerate(todo, 1):
        key = cell_key(name, level)
        label = 'clean' if name == CLEAN else f'{name} level {level}'
        head = f'[robustness] {index}/{len(todo)} {label}'
        if key in cells:
            value = cells[key]['metrics'].get(args.metric)
            print(f'{head}: {args.metric} {_fmt(value)} (measured earlier, '
                  'skipped)', flush=True)
            continue
        print(f'{head}: testing ...', flush=True)
        if test_tool is None:
            test_tool = load_test_tool()
        t = time.time()
        metrics = run_cell(test_tool, args, name, level)
        cells[key] = dict(metrics=metrics, seconds=time.time() - t)
        write_json_atomic(path, results)
        if not metric_checked and args.metric not in metrics:
            raise SystemExit(metric_error(
                args, sorted(metrics), f'the test run of {label} ({path})'))
        metric_checked = True
        write_outputs(args, results)  # partial tables while a sweep runs
        measured += 1
        clean = _metric(cells, CLEAN, args.metric)
        value = metrics.get(args.metric)
        versus = ('' if name == CLEAN or None in (clean, value) else
                  f', {value - clean:+.2f} vs clean')
        print(f'{head}: {args.metric} {_fmt(value)}{versus} '
              f'({time.time() - t:.1f} s)', flush=True)
    paths = write_outputs(args, results)
    print(f'[robustness] {measured} cells measured, '
          f'{len(todo) - measured} from earlier, {time.time() - start:.0f} '
          f's\n' + markdown_table(cells, args.corruptions, args.severities,
                                  args.metric), flush=True)
    print('[robustness] wrote ' + ', '.join(
        [path] + list(paths.values())), flush=True)
    return dict(results, paths=paths, measured=measured)


if __name__ == '__main__':
    main()
