"""Let torch >= 2.6 load the checkpoints that mmengine 0.10.x writes.

Why: torch 2.6 changed the default of ``torch.load`` to ``weights_only=True``
and mmengine 0.10.7 calls ``torch.load(filename, map_location=...)`` without
``weights_only`` (``mmengine.runner.checkpoint.load_from_local`` and the
other ``CheckpointLoader`` schemes), so ``load_from=`` (``tools/test.py CONFIG
CKPT``) and ``resume=True`` refuse mmengine's own checkpoints. Besides
tensors they hold, in ``message_hub``:

- ``log_scalars``: ``mmengine.logging.HistoryBuffer`` objects, each with two
  numpy arrays (float64 values, int64 counts) and a ``statistics_methods`` dict
  of ``HistoryBuffer.min/max/current/mean``; pickle protocol 2 (the one
  ``torch.save`` uses) writes these nested functions as
  ``getattr(HistoryBuffer, 'min')``;
- ``runtime_info``: numpy scalars -- ``eta`` (float64, ``IterTimerHook``) and
  ``best_score`` (float32 from mmseg's ``IoUMetric``, ``CheckpointHook`` with
  ``save_best``).

Everything else (``meta``, ``optimizer``, ``param_schedulers``) is plain
Python and tensors. Instead of a blanket ``weights_only=False`` (arbitrary
code execution from a downloaded file), :func:`allow_mmengine_checkpoint_types`
registers exactly these globals with ``torch.serialization.add_safe_globals``;
``getattr`` is registered as a stand-in that only returns those four
``HistoryBuffer`` methods. Importing ``denseclip`` calls it.
"""
import pickle

import numpy as np
import torch

__all__ = ['SAFE_GLOBAL_NAMES', 'allow_mmengine_checkpoint_types']

# The statistics methods every HistoryBuffer pickles (HistoryBuffer
# ._set_default_statistics); users' own ``register_statistics`` functions are
# module-level globals and stay refused.
_HISTORY_BUFFER_METHODS = ('min', 'max', 'current', 'mean')

# Full names, as they appear in the pickles, that denseclip allowlists. Kept
# literal so that a test can check additions are deliberate.
SAFE_GLOBAL_NAMES = (
    # message_hub['log_scalars'][*]
    'mmengine.logging.history_buffer.HistoryBuffer',
    # HistoryBuffer.statistics_methods (protocol 2 writes getattr(cls, name)
    # as __builtin__.getattr, which torch maps to builtins.getattr);
    # a restricted stand-in, not the real getattr
    'builtins.getattr',
    # numpy arrays (HistoryBuffer._log_history/_count_history): numpy 2.x
    # pickles name numpy._core, numpy 1.x pickles numpy.core
    'numpy._core.multiarray._reconstruct',
    'numpy.core.multiarray._reconstruct',
    'numpy.ndarray',
    # numpy scalars (runtime_info eta, best_score)
    'numpy._core.multiarray.scalar',
    'numpy.core.multiarray.scalar',
    # dtypes of both: np.dtype(...) then BUILD on its concrete class
    'numpy.dtype',
    'numpy.dtypes.Float64DType',
    'numpy.dtypes.Int64DType',
    'numpy.dtypes.Float32DType',
)


def _history_buffer_getattr(obj, name):
    """``getattr`` for unpickling, limited to HistoryBuffer statistics."""
    from mmengine.logging.history_buffer import HistoryBuffer
    if obj is HistoryBuffer and name in _HISTORY_BUFFER_METHODS:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'denseclip: refusing getattr({obj!r}, {name!r}) while loading with '
        'weights_only=True; only HistoryBuffer.'
        f'{{{",".join(_HISTORY_BUFFER_METHODS)}}} are allowed')


def _safe_globals():
    """(object, pickled full name) for every name in SAFE_GLOBAL_NAMES."""
    from mmengine.logging.history_buffer import HistoryBuffer
    if np.lib.NumpyVersion(np.__version__) >= '2.0.0':
        from numpy._core import multiarray
    else:
        from numpy.core import multiarray
    objects = {
        'mmengine.logging.history_buffer.HistoryBuffer': HistoryBuffer,
        'builtins.getattr': _history_buffer_getattr,
        'numpy._core.multiarray._reconstruct': multiarray._reconstruct,
        'numpy.core.multiarray._reconstruct': multiarray._reconstruct,
        'numpy.ndarray': np.ndarray,
        'numpy._core.multiarray.scalar': multiarray.scalar,
        'numpy.core.multiarray.scalar': multiarray.scalar,
        'numpy.dtype': np.dtype,
        # the loading numpy's own classes (numpy < 1.25 names them
        # numpy.dtype[float64]); torch matches BUILD targets by identity
        'numpy.dtypes.Float64DType': type(np.dtype(np.float64)),
        'numpy.dtypes.Int64DType': type(np.dtype(np.int64)),
        'numpy.dtypes.Float32DType': type(np.dtype(np.float32)),
    }
    assert tuple(objects) == SAFE_GLOBAL_NAMES
    return list(objects.items())


def _qualified(obj):
    return (f"{getattr(obj, '__module__', None)}."
            f"{getattr(obj, '__qualname__', None)}")


def _supports_named_globals():
    """torch >= 2.6 accepts (object, 'full.name') in add_safe_globals."""
    return torch.__version__ >= '2.6'


def allow_mmengine_checkpoint_types():
    """Allowlist mmengine checkpoint contents for ``weights_only`` loading.

    Idempotent (torch keeps the allowlist as a set). A no-op on torch < 2.4,
    which has no ``add_safe_globals`` (and loads without weights_only by
    default). On torch 2.4/2.5, which take only bare objects, registers the
    classes/functions under their own names and skips the aliases and the
    ``getattr`` stand-in; those versions also default to weights_only=False.
    """
    serialization = torch.serialization
    if not hasattr(serialization, 'add_safe_globals'):
        return
    entries = _safe_globals()
    if _supports_named_globals():
        # Reuse an entry registered before (e.g. by a reloaded copy of this
        # module, whose getattr stand-in is a new function object) so that
        # repeated calls never grow the allowlist.
        registered = {
            entry[1]: entry[0]
            for entry in serialization.get_safe_globals()
            if isinstance(entry, tuple)
        }
        new = []
        for name, obj in entries:
            old = registered.get(name)
            if old is None or _qualified(old) != _qualified(obj):
                new.append((obj, name))
        serialization.add_safe_globals(new)
    else:
        serialization.add_safe_globals([
            obj for name, obj in entries
            if name == _qualified(obj)
        ])
