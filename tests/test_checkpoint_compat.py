"""mmengine checkpoints load on torch >= 2.6 (weights_only=True by default).

A tiny mmseg model is trained with mmengine's Runner (CheckpointHook with
save_best, IoUMetric validation) on a synthetic dataset; its checkpoint must
work for ``load_from`` + test and for ``resume``, while pickles that call
anything else are still refused.
"""
import contextlib
import importlib
import os
import os.path as osp
import pickle
import subprocess
import types

import numpy as np
import pytest
import torch
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint

import denseclip  # noqa: F401  (activates the compat)
from denseclip.engine import checkpoint_compat
from denseclip.engine.checkpoint_compat import (SAFE_GLOBAL_NAMES,
                                         allow_mmengine_checkpoint_types)
from tiny_runner import CLASSES, runner_cfg, write_dataset

NEW_TORCH = torch.__version__ >= '2.6'
needs_weights_only_default = pytest.mark.skipif(
    not NEW_TORCH, reason='torch < 2.6 does not default to weights_only=True')

# Literal copy: a new allowlisted global must be added here deliberately.
DOCUMENTED = (
    'mmengine.logging.history_buffer.HistoryBuffer',
    'builtins.getattr',
    'numpy._core.multiarray._reconstruct',
    'numpy.core.multiarray._reconstruct',
    'numpy.ndarray',
    'numpy._core.multiarray.scalar',
    'numpy.core.multiarray.scalar',
    'numpy.dtype',
    'numpy.dtypes.Float64DType',
    'numpy.dtypes.Int64DType',
    'numpy.dtypes.Float32DType',
)


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """A 4-iteration run; checkpoints at iterations 2 and 4."""
    root = tmp_path_factory.mktemp('compat')
    data_root = str(root / 'data')
    write_dataset(data_root)
    work_dir = str(root / 'work')
    runner = Runner.from_cfg(runner_cfg(data_root, work_dir, 'compat_train'))
    runner.train()
    ckpt = osp.join(work_dir, 'iter_4.pth')
    assert osp.isfile(ckpt)
    return types.SimpleNamespace(root=root, data_root=data_root, ckpt=ckpt)


@contextlib.contextmanager
def _allowlist_without_denseclip():
    """Temporarily drop denseclip's entries from torch's allowlist."""
    saved = torch.serialization.get_safe_globals()
    others = [e for e in saved
              if not (isinstance(e, tuple) and e[1] in SAFE_GLOBAL_NAMES)]
    torch.serialization.clear_safe_globals()
    torch.serialization.add_safe_globals(others)
    try:
        yield
    finally:
        torch.serialization.clear_safe_globals()
        torch.serialization.add_safe_globals(saved)


def _numpy1_pickle_module():
    """A pickle module writing numpy's globals as numpy 1.x does."""

    class Pickler(pickle._Pickler):

        def save_global(self, obj, name=None):
            module = getattr(obj, '__module__', None) or ''
            if module.startswith('numpy._core'):
                module = module.replace('numpy._core', 'numpy.core', 1)
                name = name or obj.__qualname__
                self.write(pickle.GLOBAL + f'{module}\n{name}\n'.encode())
                self.memoize(obj)
            else:
                super().save_global(obj, name)

    module = types.ModuleType('numpy1_pickle')
    module.Pickler = Pickler
    return module


# --- mmengine checkpoints load --------------------------------------------


@needs_weights_only_default
def test_checkpoint_refused_without_compat(trained):
    """The control: mmengine's loader uses torch's default weights_only."""
    with _allowlist_without_denseclip():
        with pytest.raises(pickle.UnpicklingError, match='HistoryBuffer'):
            _load_checkpoint(trained.ckpt, map_location='cpu')
    ckpt = _load_checkpoint(trained.ckpt, map_location='cpu')
    assert isinstance(ckpt['message_hub']['log_scalars']['train/loss'],
                      HistoryBuffer)


def test_checkpoint_contents_load_weights_only(trained):
    ckpt = torch.load(trained.ckpt, map_location='cpu', weights_only=True)
    hub = ckpt['message_hub']
    loss = hub['log_scalars']['train/loss']
    values, counts = loss.data
    assert values.dtype == np.float64 and counts.dtype == np.int64
    assert len(values) == 4
    assert set(loss._statistics_methods) >= {'min', 'max', 'current', 'mean'}
    assert isinstance(hub['runtime_info']['eta'], np.float64)
    assert isinstance(hub['runtime_info']['best_score'], np.float32)
    assert hub['runtime_info']['iter'] == 3
    assert ckpt['meta']['dataset_meta']['classes'] == CLASSES


def test_numpy1_checkpoint_loads(trained, tmp_path):
    """numpy 1.x writes numpy.core.multiarray.* instead of numpy._core."""
    ckpt = torch.load(trained.ckpt, map_location='cpu', weights_only=True)
    path = str(tmp_path / 'numpy1.pth')
    torch.save(ckpt, path, pickle_module=_numpy1_pickle_module())
    with _allowlist_without_denseclip():
        globals_in = torch.serialization.get_unsafe_globals_in_checkpoint(
            path)
    assert 'numpy.core.multiarray._reconstruct' in globals_in
    assert not any(g.startswith('numpy._core') for g in globals_in)
    again = torch.load(path, map_location='cpu', weights_only=True)
    np.testing.assert_array_equal(
        again['message_hub']['log_scalars']['train/loss'].data[0],
        ckpt['message_hub']['log_scalars']['train/loss'].data[0])
    assert again['message_hub']['runtime_info']['best_score'] == \
        ckpt['message_hub']['runtime_info']['best_score']


def test_load_from_and_test(trained):
    work_dir = str(trained.root / 'test_run')
    runner = Runner.from_cfg(
        runner_cfg(trained.data_root, work_dir, 'compat_test',
                   load_from=trained.ckpt))
    metrics = runner.test()
    assert 'mIoU' in metrics and 0 <= metrics['mIoU'] <= 100
    saved = torch.load(trained.ckpt, map_location='cpu')['state_dict']
    loaded = runner.model.state_dict()  # on CUDA where there is one
    for key, value in saved.items():
        torch.testing.assert_close(loaded[key].cpu(), value, msg=key)


def test_resume(trained):
    before = torch.load(trained.ckpt, map_location='cpu')['message_hub']
    work_dir = str(trained.root / 'resume_run')
    runner = Runner.from_cfg(
        runner_cfg(trained.data_root, work_dir, 'compat_resume',
                   max_iters=6, load_from=trained.ckpt, resume=True))
    runner.train()
    assert runner.iter == 6
    # only the iterations after the checkpoint ran
    assert sorted(f for f in os.listdir(work_dir) if f.startswith('iter_')) \
        == ['iter_6.pth']
    # message_hub was restored: the loss history continues the old one
    old_loss = before['log_scalars']['train/loss'].data[0]
    new_loss = runner.message_hub.get_scalar('train/loss').data[0]
    assert len(new_loss) == len(old_loss) + 2
    np.testing.assert_array_equal(new_loss[:len(old_loss)], old_loss)
    old_miou = before['log_scalars']['val/mIoU'].data[0]
    new_miou = runner.message_hub.get_scalar('val/mIoU').data[0]
    assert len(new_miou) == len(old_miou) + 1
    np.testing.assert_array_equal(new_miou[:len(old_miou)], old_miou)


# --- everything else is still refused -------------------------------------


class _System:

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


class _Popen:

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (subprocess.Popen, (['touch', self.marker], ))


class _Getattr:
    """Asks the getattr stand-in for something other than a statistic."""

    def __init__(self, obj, name):
        self.obj, self.name = obj, name

    def __reduce__(self):
        return (getattr, (self.obj, self.name))


@pytest.mark.parametrize('make', [_System, _Popen],
                         ids=['os.system', 'subprocess.Popen'])
@pytest.mark.parametrize('weights_only', [
    pytest.param(None, id='default', marks=needs_weights_only_default),
    pytest.param(True, id='weights_only')])
def test_foreign_callable_refused(tmp_path, make, weights_only):
    marker = str(tmp_path / 'pwned')
    path = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {}, 'meta': make(marker)}, path)
    kwargs = {} if weights_only is None else dict(weights_only=True)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, **kwargs)
    assert not osp.exists(marker)


@needs_weights_only_default
@pytest.mark.parametrize('obj, name', [
    (HistoryBuffer, '__init__'),
    (HistoryBuffer, 'register_statistics'),
    (HistoryBuffer, '_statistics_methods'),
    (np.ndarray, 'tofile'),
])
def test_getattr_stand_in_is_restricted(tmp_path, obj, name):
    path = str(tmp_path / 'getattr.pth')
    torch.save({'x': _Getattr(obj, name)}, path)
    with pytest.raises(pickle.UnpicklingError, match='refusing getattr'):
        torch.load(path)


@needs_weights_only_default
def test_object_arrays_refused(tmp_path):
    """Only float64/int64/float32 dtypes can be rebuilt."""
    path = str(tmp_path / 'object.pth')
    torch.save({'x': np.array([1, 'a'], dtype=object)}, path)
    with pytest.raises(pickle.UnpicklingError, match='Can only build'):
        torch.load(path)


# --- the registration itself ----------------------------------------------


@needs_weights_only_default
def test_registered_globals_are_exactly_documented():
    assert SAFE_GLOBAL_NAMES == DOCUMENTED
    saved = torch.serialization.get_safe_globals()
    try:
        torch.serialization.clear_safe_globals()
        allow_mmengine_checkpoint_types()
        added = torch.serialization.get_safe_globals()
    finally:
        torch.serialization.clear_safe_globals()
        torch.serialization.add_safe_globals(saved)
    assert all(isinstance(e, tuple) for e in added)
    assert sorted(name for _, name in added) == sorted(DOCUMENTED)
    # the import of denseclip registered them
    names_now = {e[1] for e in saved if isinstance(e, tuple)}
    assert set(DOCUMENTED) <= names_now


def test_registration_is_idempotent():
    before = torch.serialization.get_safe_globals()
    allow_mmengine_checkpoint_types()
    allow_mmengine_checkpoint_types()
    importlib.reload(checkpoint_compat)  # a new getattr stand-in object
    checkpoint_compat.allow_mmengine_checkpoint_types()
    import denseclip as again  # noqa: F401
    after = torch.serialization.get_safe_globals()
    assert len(after) == len(before)
    assert set(map(_key, after)) == set(map(_key, before))


def _key(entry):
    obj, name = entry if isinstance(entry, tuple) else (entry, None)
    return (getattr(obj, '__module__', None),
            getattr(obj, '__qualname__', None), name)


def test_no_add_safe_globals_is_a_no_op(monkeypatch):
    """torch < 2.4 has no add_safe_globals: nothing to do, no error."""
    fake = types.SimpleNamespace()  # a torch.serialization without the API
    monkeypatch.setattr(torch, 'serialization', fake)
    allow_mmengine_checkpoint_types()
