"""``--cfg-options`` that point a toy config at the toy files and set its schedule."""
from typing import List, Sequence

from .files import ToyFiles

# where each toy config reads the CLIP file
CLIP_FILE_KEYS = {
    'DenseCLIP': ('model.pretrained', ),
    # MaskCLIP+: the MaskCLIP teacher's image tower and head
    'MaskClipPlus': ('model.teacher.backbone.pretrained',
                     'model.teacher.decode_head.clip_pretrained'),
    # MaskCLIP: the image tower and the head
    'EncoderDecoder': ('model.backbone.pretrained',
                       'model.decode_head.clip_pretrained'),
    # MaskCLIP and its successors on the ViT toy CLIP
    'TrainingFreeSegmentor': ('model.backbone.pretrained',
                              'model.decode_head.clip_pretrained'),
}
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def path_options(files: ToyFiles, model_type: str = 'DenseCLIP',
                 loaders: Sequence[str] = LOADERS) -> List[str]:
    """Options pointing a toy config of ``model_type`` (with these data
    ``loaders``) at the files."""
    return [f'{key}={files.clip_file}'
            for key in CLIP_FILE_KEYS[model_type]] + [
        f'{loader}.dataset.data_root={files.data_root}' for loader in loaders
    ]


def schedule_options(iters: int, validate: bool = True) -> List[str]:
    """Options for a run of ``iters`` iterations in the config's shape of
    schedule (linear warm-up, poly decay, a checkpoint at the end); without
    ``validate`` the run never validates (the demo tests afterwards)."""
    # a tenth of the run, but half of a short one: mmengine's LinearLR
    # reaches the full lr only at its end, so a 1-iteration warm-up (iters //
    # 10 of a short run) would leave the whole run at the start factor
    warmup = min(50, iters // 10) if iters >= 20 else max(1, iters // 2)
    return [
        f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
        f'train_cfg.val_begin={iters if validate else iters + 1}',
        f'default_hooks.checkpoint.interval={iters}',
        f'default_hooks.logger.interval={min(20, iters)}',
        f'param_scheduler.0.end={warmup}',
        f'param_scheduler.1.begin={warmup}', f'param_scheduler.1.end={iters}'
    ]
