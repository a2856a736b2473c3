"""The JSON file a resumable sweep (``tools/robustness.py``,
``tools/ovss_benchmark.py``) keeps its measured cells in, with what they were
measured on.

Format 2: ``{'version': 2, 'tool', 'measured_on', 'cells'}``; ``measured_on``
holds the config, the weight / CLIP files by their SHA-256, the data by its
root and file-list fingerprint, the options (:mod:`.measured_on`). A resumed
run whose ``measured_on`` differs in anything is refused, with what differs
and how to start afresh, never mixed. Format 1 (no ``version`` 2, a
``settings`` record without data or file hashes) is refused the same way,
naming the file: its cells cannot be checked.
"""
import json
import os.path as osp
from typing import Callable, Dict, Optional

from .measured_on import differences

RESULTS_FORMAT_VERSION = 2


class ResultsFileError(ValueError):
    """A results file that is unreadable or holds cells measured on
    something else."""


def start_afresh(path: str) -> str:
    """The advice closing a refusal: how to measure anew."""
    return (f'to measure anew, move it away (mv {path} {path}.old) or '
            'choose another --work-dir')


def read_results(path: str, tool: str) -> Optional[Dict]:
    """The results recorded in ``path`` (None when there is no file); an
    error naming the file when it is not ``tool``'s, or of a format that
    cannot be checked."""
    if not osp.exists(path):
        return None
    try:
        with open(path) as f:
            results = json.load(f)
        if not isinstance(results, dict):
            raise TypeError('no JSON object')
        if not isinstance(results['cells'], dict):
            raise TypeError('"cells" is no mapping')
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ResultsFileError(
            f'{path} is not a {tool} results file ({err}); '
            f'{start_afresh(path)}') from err
    version = results.get('version')
    if version == 1 or 'measured_on' not in results:
        raise ResultsFileError(
            f'{path} was written by an earlier tools/{tool}.py, which did '
            'not record the data and the CLIP / weight files its '
            f'{len(results["cells"])} cell(s) were measured on, so they '
            'cannot be checked against this run (a dataset written anew in '
            f'place went unnoticed); {start_afresh(path)}')
    if version != RESULTS_FORMAT_VERSION:
        raise ResultsFileError(
            f'{path} has results format {version!r}; this tools/{tool}.py '
            f'reads format {RESULTS_FORMAT_VERSION}; {start_afresh(path)}')
    if results.get('tool') != tool:
        raise ResultsFileError(
            f'{path} holds results of {results.get("tool")!r}, not of '
            f'{tool}; {start_afresh(path)}')
    return results


def refuse_mix(path: str, recorded: Dict, current: Dict,
               what: str = 'its cells were') -> None:
    """An error when ``what`` in ``path`` (measured on ``recorded``) was
    measured on something other than ``current``, naming what differs."""
    changed = differences(recorded, current)
    if changed:
        raise ResultsFileError(
            f'{path}: {what} measured on something else than this run '
            f'({"; ".join(changed)}); they are not mixed with new ones: '
            f'{start_afresh(path)}')


def load_results(path: str, tool: str,
                 measured_on: Callable[[Optional[Dict]], Dict]) -> Dict:
    """``{'version', 'tool', 'measured_on', 'cells'}``: those recorded in
    ``path`` when they were measured on what this run measures on, empty
    cells when there is no file; a :class:`ResultsFileError` otherwise.

    ``measured_on(known)`` describes this run; ``known`` is the recorded
    description (None without a file), whose file hashes it may reuse.
    """
    results = read_results(path, tool)
    current = measured_on(results['measured_on'] if results else None)
    current = json.loads(json.dumps(current))  # tuples -> lists, as stored
    if results is None:
        return dict(version=RESULTS_FORMAT_VERSION, tool=tool,
                    measured_on=current, cells={})
    refuse_mix(path, results['measured_on'], current)
    results['measured_on'] = current  # the files' stat (hash cache) now
    return results
