"""The runner ``tools/train.py`` and ``tools/test.py`` build: mmengine's,
with a console that shows the run, not mmengine's start-up dump."""
import logging

from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.runner import Runner
from mmseg.registry import RUNNERS

from ..utils.tool_output import RunnerConsoleFilter

__all__ = ['build_runner', 'quiet_console']


def quiet_console(logger: MMLogger) -> None:
    """Add :class:`RunnerConsoleFilter` to the logger's console handlers
    (not to its file handler: the log file keeps everything)."""
    for handler in logger.handlers:
        if (isinstance(handler, logging.StreamHandler)
                and not isinstance(handler, logging.FileHandler)
                and not any(isinstance(f, RunnerConsoleFilter)
                            for f in handler.filters)):
            handler.addFilter(RunnerConsoleFilter())


class _QuietConsole:
    """Runner mixin: the logger is built with :func:`quiet_console`, before
    the runner logs its environment and config."""

    def build_logger(self, *args, **kwargs) -> MMLogger:
        logger = super().build_logger(*args, **kwargs)
        quiet_console(logger)
        logger.info('mmengine\'s environment, config and hook order: in '
                    f'{logger.log_file} (--verbose: here too)')
        return logger


def build_runner(cfg: Config, verbose: bool = False) -> Runner:
    """``Runner.from_cfg(cfg)``, or the config's ``runner_type``'s. Unless
    ``verbose``, the console leaves out what
    :data:`~denseclip.utils.tool_output.RUNNER_CONSOLE_NOISE` lists
    (the environment, the config, the hook order, one line per parameter);
    the run's log file in its work dir has every line either way."""
    runner_cls = cfg.get('runner_type', Runner)
    if isinstance(runner_cls, str):
        found = RUNNERS.get(runner_cls)
        if found is None:
            raise KeyError(f'runner_type={runner_cls!r} of the config is not '
                           "registered in mmseg's RUNNERS")
        runner_cls = found
    if not verbose:
        runner_cls = type(runner_cls.__name__, (_QuietConsole, runner_cls),
                          {'__module__': __name__})
    return runner_cls.from_cfg(cfg)
