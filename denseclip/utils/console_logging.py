"""mmengine's loggers and a tool that redirects each run's output.

A tool that runs ``tools/test.py``'s ``main`` in its own process, with the
run's console output redirected to the run's folder, meets mmengine's default
logger: it is created by the first ``print_log`` (the registries log their
look-ups), and its console keeps the ``sys.stdout`` of that moment. Created
before a run (by the tool reading a config or listing a dataset), it would
print what a run logs before its runner exists (``tools/test.py``'s
corruption line) on the tool's own output instead of the run's file.
"""
import logging
import sys


class CurrentStdout:
    """A stream that writes to whatever ``sys.stdout`` is at the time."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


def console_follows_stdout(name: str = 'mmengine') -> None:
    """Make the console of mmengine's logger ``name`` (when there is one)
    write to the ``sys.stdout`` of each moment, not of its creation."""
    from mmengine.logging import MMLogger
    if not MMLogger.check_instance_created(name):
        return
    for handler in MMLogger.get_instance(name).handlers:
        if type(handler) is logging.StreamHandler and handler.stream in (
                sys.stdout, sys.__stdout__):
            handler.setStream(CurrentStdout())
