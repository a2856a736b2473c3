"""Save the random number generators with each checkpoint; continue them on resume."""
import logging
import random
from typing import Optional

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmseg.registry import HOOKS

__all__ = ['RandomStateHook', 'get_random_states', 'set_random_states']

CHECKPOINT_KEY = 'random_states'


def get_random_states() -> dict:
    """The states of Python's ``random``, numpy's global and torch's (CPU and,
    when initialised, CUDA) generators, as plain Python and tensors (they
    load with ``torch.load(weights_only=True)``)."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    states = dict(
        python=dict(version=version, internal=list(internal), gauss=gauss),
        numpy=dict(name=name, keys=torch.from_numpy(keys.astype(np.int64)),
                   pos=int(pos), has_gauss=int(has_gauss),
                   cached_gaussian=float(cached)),
        torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states['cuda'] = torch.cuda.get_rng_state_all()
    return states


def set_random_states(states: dict) -> None:
    """Restore what :func:`get_random_states` returned."""
    py = states['python']
    random.setstate((py['version'], tuple(py['internal']), py['gauss']))
    npy = states['numpy']
    np.random.set_state((npy['name'], npy['keys'].numpy().astype(np.uint32),
                         npy['pos'], npy['has_gauss'],
                         npy['cached_gaussian']))
    torch.set_rng_state(states['torch'].cpu())
    cuda = states.get('cuda')
    if cuda is not None and torch.cuda.is_available() and len(
            cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda])


class _RestoreAfterSkip:
    """Stands in for the train loop's data iterator while it skips the
    batches a resumed run has already trained on; restores the random
    states right before the first new batch is fetched, then steps aside."""

    def __init__(self, loop, skip: int, states: dict):
        self.loop = loop
        self.iterator = loop.dataloader_iterator
        self.skip = skip
        self.states = states

    def __iter__(self):
        return self

    def __next__(self):
        if self.skip > 0:
            self.skip -= 1
            return next(self.iterator)
        set_random_states(self.states)
        self.loop.dataloader_iterator = self.iterator
        return next(self.iterator)


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Make a resumed run draw the same random numbers as an uninterrupted one.

    mmengine's resume restores weights, optimizer, lr schedule and iteration,
    and skips the batches already trained on (with ``num_workers > 0`` the
    workers are re-seeded and replay the same augmentations), but the main
    process's generators start from the seed again: dropout, drop path and
    (with ``num_workers=0``) the pipeline's augmentations then differ from an
    uninterrupted run. This hook

    * saves the generators' states in every checkpoint (``random_states``);
    * keeps validation out of the training stream: its data loader draws a
      seed from torch's generator, so the states are put back after each
      validation (a resumed run does not repeat the validation of the
      checkpoint's iteration);
    * on resume, restores the states after the loop has skipped the trained
      batches and before it fetches the first new one.

    Processes of a distributed run share the seed (``diff_rank_seed=False``,
    the default) and so their states: the checkpoint holds rank 0's and
    every rank restores them. With ``diff_rank_seed=True`` nothing is
    restored (a log line says so).
    """

    priority = 'LOW'  # before_save_checkpoint order does not matter

    def __init__(self) -> None:
        self._before_val: Optional[dict] = None
        self._loaded: Optional[dict] = None

    def before_val(self, runner) -> None:
        self._before_val = get_random_states()

    def after_val(self, runner) -> None:
        if self._before_val is not None:
            set_random_states(self._before_val)
            self._before_val = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        # a checkpoint saved during validation (save_best) records the
        # training stream, not validation's
        checkpoint[CHECKPOINT_KEY] = (self._before_val if self._before_val
                                      is not None else get_random_states())

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._loaded = checkpoint.get(CHECKPOINT_KEY)

    def before_train(self, runner) -> None:
        states, self._loaded = self._loaded, None
        if runner.iter == 0:  # load_from (fine-tuning), not a resume
            return
        if states is None:
            print_log(
                f'RandomStateHook: the checkpoint resumed at iteration '
                f'{runner.iter} holds no random states (written without this '
                'hook); the run continues from the seed\'s states',
                logger='current', level=logging.WARNING)
            return
        randomness = runner.cfg.get('randomness') or {}
        if randomness.get('diff_rank_seed', False):
            print_log(
                'RandomStateHook: diff_rank_seed=True, each process has its '
                'own random states; the checkpoint holds only rank 0\'s, so '
                'none are restored', logger='current', level=logging.WARNING)
            return
        loop = runner.train_loop
        if hasattr(loop, 'dataloader_iterator'):  # IterBasedTrainLoop
            loop.dataloader_iterator = _RestoreAfterSkip(
                loop, runner.iter, states)
        else:  # an epoch-based loop resumes at an epoch start, skips nothing
            set_random_states(states)
        print_log(
            f'RandomStateHook: continuing the random states of iteration '
            f'{runner.iter}', logger='current')
