"""The JSON file a resumable sweep (``tools/robustness.py``,
``tools/ovss_benchmark.py``) keeps its measured cells in."""
import json
import os.path as osp
from typing import Dict

RESULTS_FORMAT_VERSION = 1


class ResultsFileError(ValueError):
    """A results file that is unreadable or holds other settings' cells."""


def load_results(path: str, settings: Dict, tool: str) -> Dict:
    """``{'version', 'settings', 'cells'}`` recorded in ``path`` (empty when
    there is none); an error naming the file when it is not ``tool``'s or
    was measured with other ``settings`` (and which of them differ)."""
    wanted = json.loads(json.dumps(settings))  # tuples -> lists, as stored
    if not osp.exists(path):
        return dict(version=RESULTS_FORMAT_VERSION, settings=wanted, cells={})
    try:
        with open(path) as f:
            results = json.load(f)
        recorded = results['settings']
        if not isinstance(results['cells'], dict):
            raise TypeError('"cells" is no mapping')
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ResultsFileError(
            f'{path} is not a {tool} results file ({err}); move it away or '
            'choose another --work-dir') from err
    if recorded != wanted:
        changed = ', '.join(
            f'{k}: {recorded.get(k)!r} then, {wanted.get(k)!r} now'
            for k in sorted(set(recorded) | set(wanted))
            if recorded.get(k) != wanted.get(k))
        raise ResultsFileError(
            f'{path} holds results measured with other settings ({changed}); '
            'choose another --work-dir or delete it to measure anew')
    return results
