"""mmengine's CheckpointHook, with checkpoints that are complete or absent."""
import os
import os.path as osp

from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook
from mmseg.registry import HOOKS

from ..utils.atomic_files import replace_file, write_text_atomic
from .checkpoint_files import PARTIAL_SUFFIX


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """``CheckpointHook`` (same arguments) that survives being killed.

    mmengine 0.10.7's hook deletes the oldest checkpoint (``max_keep_ckpts``)
    *before* writing the new one, writes ``iter_N.pth`` in place and then
    ``last_checkpoint`` in place: a run killed while it saves can be left
    with a truncated ``iter_N.pth`` and, with ``max_keep_ckpts=1``, no
    complete checkpoint at all. Here, for checkpoints on the local disk:

    1. the checkpoint is written to ``iter_N.pth.partial``, flushed to disk
       and renamed to ``iter_N.pth`` (a rename is atomic);
    2. then ``last_checkpoint`` is replaced atomically;
    3. only then are checkpoints beyond ``max_keep_ckpts`` deleted.

    So ``iter_N.pth`` and ``last_checkpoint`` always name complete files; a
    ``.partial`` left by a killed run is deleted when the run is resumed
    through ``tools/train.py``. Other storage backends (``out_dir`` on
    object storage) use mmengine's own order.
    """

    def _save_checkpoint_with_step(self, runner, step, meta):
        if not isinstance(self.file_backend, LocalBackend):
            return super()._save_checkpoint_with_step(runner, step, meta)
        outdated = []
        if self.max_keep_ckpts > 0 and not (
                self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                outdated.append(self.keep_ckpt_ids.popleft())
            self.keep_ckpt_ids.append(step)
            # saved in the checkpoint, so that a resumed run knows them
            runner.message_hub.update_info('keep_ckpt_ids',
                                           list(self.keep_ckpt_ids))

        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir,
                                                     ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        partial = self.last_ckpt + PARTIAL_SUFFIX
        runner.save_checkpoint(
            self.out_dir,
            ckpt_filename + PARTIAL_SUFFIX,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args)
        if not is_main_process():
            return
        replace_file(partial, self.last_ckpt, fsync=True)
        last = osp.join(runner.work_dir, 'last_checkpoint')
        write_text_atomic(last, self.last_ckpt, fsync=True,
                          partial=f'{last}{PARTIAL_SUFFIX}.{os.getpid()}')
        for old in outdated:
            path = self.file_backend.join_path(self.out_dir,
                                               self.filename_tmpl.format(old))
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)
