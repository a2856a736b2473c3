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
a sweep extended with more types or levels. A results file recorded for
another config, checkpoint or options is an error, not a mix. At the end
(and after every cell) it writes ``robustness.csv``, ``robustness.md`` (a
table: types x levels, the mean per type and per level, the clean run) and
``robustness.png`` (the metric against the level, one line per type, the
clean run as a dashed line).

``--corruptions``: names from ``denseclip.datasets.CORRUPTIONS``, ``all``
(the 19) or ``reference`` (MaskCLIP's 8, the default). The runs' own logs go
to their work dirs; ``--verbose`` also prints them.
"""
import argparse
import contextlib
import csv
import gc
import hashlib
import io
import itertools
import numbers
import os
import os.path as osp
import sys
import time
from typing import Dict, List, Optional, Sequence

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)  # run from a checkout without an install too
from denseclip.datasets.corrupt import (CORRUPTIONS,  # noqa: E402
                                        REFERENCE_CORRUPTIONS, SEVERITIES)
from denseclip.utils.atomic_files import (atomic_path,  # noqa: E402
                                          write_json_atomic,
                                          write_text_atomic)
from denseclip.utils.results_file import (  # noqa: E402
    ResultsFileError, load_results as load_results_file)

RESULTS = 'robustness.json'
CLEAN = 'clean'
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
                        help='metric of the table and plot (default: mIoU; '
                        'the CSV has all)')
    parser.add_argument('--tta', action='store_true',
                        help='test with multi-scale + flip (tools/test.py '
                        '--tta); a results file is kept per setting')
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


def _file_stat(path: Optional[str]) -> Optional[List[int]]:
    if not path:
        return None
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns]


def run_settings(args: argparse.Namespace) -> Dict:
    """What the measurements depend on; a results file of other settings is
    not resumed."""
    with open(args.config, 'rb') as f:
        config_sha = hashlib.sha256(f.read()).hexdigest()
    return dict(
        config=osp.abspath(args.config), config_sha256=config_sha,
        checkpoint=osp.abspath(args.checkpoint) if args.checkpoint else None,
        checkpoint_stat=_file_stat(args.checkpoint),
        cfg_options=list(args.cfg_options),
        tta=bool(args.tta))


def load_results(path: str, settings: Dict) -> Dict:
    """The cells recorded in ``path`` for these ``settings`` (none when
    there is no file); stops on another tool's file or other settings."""
    try:
        return load_results_file(path, settings, 'robustness')
    except ResultsFileError as err:
        raise SystemExit(str(err))


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
    cell_dir = osp.join(args.work_dir, 'cells', key.replace('/', '_'))
    argv = [args.config] + ([args.checkpoint] if args.checkpoint else []) + [
        '--work-dir', cell_dir
    ] + (['--tta'] if args.tta else []) + (
        ['--corrupt', name, '--severity', str(level)]
        if name != CLEAN else []) + ['--cfg-options'] + options
    os.makedirs(cell_dir, exist_ok=True)
    console = osp.join(cell_dir, 'console.log')
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


def write_csv(path: str, cells: Dict) -> None:
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
    write_text_atomic(path, buf.getvalue())


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
        ax.legend(loc='center left', bbox_to_anchor=(1.01, 0.5), fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format='png')
    plt.close(fig)


def write_outputs(args: argparse.Namespace, results: Dict) -> Dict[str, str]:
    cells = results['cells']
    names, levels = args.corruptions, args.severities
    paths = {ext: osp.join(args.work_dir, f'robustness.{ext}')
             for ext in ('csv', 'md', 'png')}
    write_csv(paths['csv'], cells)
    checkpoint = args.checkpoint or 'no checkpoint'
    title = (f'{osp.basename(args.config)} ({osp.basename(checkpoint)}'
             f'{", TTA" if args.tta else ""}) under corruptions')
    write_text_atomic(paths['md'], f'{args.metric} of {title}\n\n' +
                      markdown_table(cells, names, levels, args.metric))
    write_plot(paths['png'], cells, names, levels, args.metric, title)
    return paths


# ------------------------------------------------------------------- main
def main(argv: Optional[Sequence[str]] = None) -> Dict:
    """Run the sweep; return the results (``cells``: key -> metrics)."""
    args = parse_args(argv)
    os.makedirs(args.work_dir, exist_ok=True)
    results_path = osp.join(args.work_dir, RESULTS)
    results = load_results(results_path, run_settings(args))
    cells = results['cells']
    todo = [(CLEAN, 0)] + [(n, l) for n in args.corruptions
                           for l in args.severities]
    test_tool = None
    start = time.time()
    measured = 0
    print(f'[robustness] {args.config}: {len(todo)} cells (clean + '
          f'{len(args.corruptions)} types x levels '
          f'{",".join(map(str, args.severities))}) in {args.work_dir}',
          flush=True)
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
        write_json_atomic(results_path, results)
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
        [results_path] + list(paths.values())), flush=True)
    return dict(results, paths=paths, measured=measured)


if __name__ == '__main__':
    main()
