"""What the tools print: their own lines, progress, metrics and errors, not
third-party noise that users cannot act on (``--verbose`` shows it).

Two kinds of noise, both kept here so that every tool hides the same:

- Python warnings that mmseg and mmengine give on every run of these tools
  (:data:`THIRD_PARTY_WARNINGS`), hidden inside :func:`quiet_warnings`;
- mmengine's start-up dump and per-parameter lines in a runner's log
  (:data:`RUNNER_CONSOLE_NOISE`: the environment, the whole config, the hook
  order, ...; about 900 lines for one ``tools/test.py --tta`` run), kept out
  of the console by :class:`RunnerConsoleFilter` and still written to the
  run's log file (``denseclip.engine.build_runner`` installs it).

Standard library only.
"""
import contextlib
import logging
import re
import warnings
from typing import Iterator, Tuple, Type

__all__ = ['THIRD_PARTY_WARNINGS', 'RUNNER_CONSOLE_NOISE',
           'RunnerConsoleFilter', 'quiet_warnings']

# (message, category, module where it is raised): regular expressions
# matched at the start, as ``warnings.filterwarnings`` matches them
THIRD_PARTY_WARNINGS: Tuple[Tuple[str, Type[Warning], str], ...] = (
    # mmseg's BaseDecodeHead builds its loss with mmseg's own deprecated
    # builder, for every decode head
    (r'``build_loss`` would be deprecated soon', UserWarning,
     r'mmseg\.models\.builder'),
    # every CrossEntropyLoss left at avg_non_ignore=False (the papers'
    # setting, kept on purpose)
    (r'Default ``avg_non_ignore`` is False', UserWarning,
     r'mmseg\.models\.losses\.cross_entropy_loss'),
    # SegVisualizationHook in every run that paints nothing (no --show-dir)
    (r'The draw is False, it means that the hook for visualization',
     UserWarning, r'mmseg\.engine\.hooks\.visualization_hook'),
    # mmseg's SegTTAModel gives mmengine label maps without a channel axis
    (r'The shape of value will convert from', UserWarning,
     r'mmengine\.structures\.pixel_data'),
)

# messages of a runner's log (regular expressions matched at the start)
# that the console does not show; the log file keeps them
RUNNER_CONSOLE_NOISE: Tuple[str, ...] = (
    r'\n-+\nSystem environment:',  # Python, torch, compiler, CUDA, OpenCV
    r'Config:\n',  # the whole config (also saved in the work dir)
    r'Hooks will be executed in the following order',
    r'paramwise_options -- ',  # one line per parameter and setting
    r'\S+ is skipped since its requires_grad=False',  # frozen on purpose
    r'Distributed training is not used, all SyncBatchNorm',
    r'"FileClient" will be deprecated',
    r'"HardDiskBackend" is the alias of "LocalBackend"',
    r'The prefix is not set in metric class',
)
_NOISE = re.compile('|'.join(f'(?:{p})' for p in RUNNER_CONSOLE_NOISE))


class RunnerConsoleFilter(logging.Filter):
    """Drops the records whose message is :data:`RUNNER_CONSOLE_NOISE`
    (for a console handler; leave the file handler unfiltered)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return _NOISE.match(record.getMessage()) is None


@contextlib.contextmanager
def quiet_warnings(verbose: bool = False) -> Iterator[None]:
    """Inside, the warnings of :data:`THIRD_PARTY_WARNINGS` are not shown
    (all of them are with ``verbose``); the warning filters are restored
    after, so a tool called from Python changes nothing for its caller."""
    with warnings.catch_warnings():
        if not verbose:
            for message, category, module in THIRD_PARTY_WARNINGS:
                warnings.filterwarnings('ignore', message, category, module)
        yield
