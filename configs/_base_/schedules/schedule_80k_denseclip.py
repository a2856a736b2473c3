# The papers' schedule (DenseCLIP and its CLIP + FPN baselines): AdamW,
# lr 1e-4, weight decay 1e-4; the backbone at 0.1x lr, the text encoder
# frozen (lr 0; DenseCLIP also sets requires_grad=False on it), no weight
# decay on norms; 1500 linear warm-up iterations, then poly (power 0.9) to
# 1e-6; 80k iterations at 8 GPUs x 4 images. Reference: the optimizer and
# lr_config of denseclip_fpn_res50_512x512_80k.py, mmseg 0.x schedule_80k.py.
# MergedGroupsOptimWrapperConstructor: the same per-parameter settings as
# mmengine's default constructor, in one param group per distinct setting
# (3 for DenseCLIP-R50 instead of 289) and fused AdamW.
optim_wrapper = dict(
    type='OptimWrapper',
    constructor='MergedGroupsOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=1e-4, weight_decay=1e-4),
    paramwise_cfg=dict(
        custom_keys={
            'backbone': dict(lr_mult=0.1),
            # matches nothing in the FPN baselines, which have no text tower
            'text_encoder': dict(lr_mult=0.0),
            'norm': dict(decay_mult=0.0),
        }),
    clip_grad=None)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0,
         end=1500),
    dict(type='PolyLR', power=0.9, eta_min=1e-6, by_epoch=False,
         begin=1500, end=80000),
]
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=80000, val_interval=8000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=8000),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
