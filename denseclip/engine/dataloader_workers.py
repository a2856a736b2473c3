"""Dataloader worker processes that end the ordinary way after a run.

Each ``tools/test.py`` / ``tools/train.py`` run left a ``/tmp/pymp-*`` folder
per dataloader worker. A worker sends each batch's tensors to the main
process through shared memory, as file descriptors (torch's default
``file_descriptor`` sharing strategy); handing over a descriptor starts
multiprocessing's resource sharer in the worker, which listens on a socket
in a temporary folder ``pymp-*`` that the worker removes when it exits
normally. Configs keep their workers alive across epochs
(``persistent_workers=True``, mmseg's usual setting), and mmengine never
stops them: at the end of the process multiprocessing *terminates* them
(SIGTERM), so their clean-up never runs and the folders stay.
:func:`dataloader_workers_shut_down` stops them the ordinary way once the
run is over.
"""
import contextlib
from typing import Iterator, List

from mmengine.runner import BaseLoop

__all__ = ['dataloader_workers_shut_down', 'shut_down_dataloader_workers']


def _loops(runner) -> List[BaseLoop]:
    # the private attributes: the public properties would build a loop that
    # the run never used (and its dataset) just to look at it
    loops = (runner._train_loop, runner._val_loop, runner._test_loop)
    return [loop for loop in loops if isinstance(loop, BaseLoop)]


def shut_down_dataloader_workers(runner) -> int:
    """Stop the worker processes of every dataloader the runner's loops
    have started (persistent ones, and those of an iterator left mid-way,
    such as an iteration-based training loop's); returns how many
    dataloader iterators were shut down."""
    done = 0
    for loop in _loops(runner):
        owners = (getattr(loop, 'dataloader', None),
                  # IterBasedTrainLoop's endless iterator over its loader
                  getattr(loop, 'dataloader_iterator', None))
        for owner in owners:
            iterator = getattr(owner, '_iterator', None)
            shut_down = getattr(iterator, '_shutdown_workers', None)
            if shut_down is not None:  # a multi-process loader's iterator
                shut_down()
                done += 1
                if owner is getattr(loop, 'dataloader', None):
                    owner._iterator = None  # a later pass starts workers anew
    return done


@contextlib.contextmanager
def dataloader_workers_shut_down(runner) -> Iterator[None]:
    """Run the block (``runner.train()`` / ``runner.test()``), then stop
    the dataloader workers it started, also when it raised."""
    try:
        yield
    finally:
        shut_down_dataloader_workers(runner)
