# MaskCLIP+ transductive zero-shot on Pascal Context (60 classes with
# background): DeepLabv3+-R101; the 10 unseen classes learn from MaskCLIP
# RN50's pseudo labels until iteration 4000, then by self-training. Paper: 66.7
# mIoU on the unseen classes (mIoU_unseen).
_base_ = [
    '../_base_/models/maskclip_plus_deeplabv2_r101.py',
    '../_base_/datasets/pascal_context_zeroshot.py',
    '../../_base_/default_runtime.py',
    '../_base_/schedules/sgd_poly.py',
]
model = dict(
    data_preprocessor=dict(size={{_base_.crop_size}}),
    # the teacher is this MaskCLIP config's model (its CLIP file, classes,
    # templates and ks/pd settings)
    teacher='{{fileDirname}}/../../maskclip/maskclip_r50_520x520_pascal_context_59.py',
    unseen_classes={{_base_.unseen_classes}},
    self_train_from=4000,
    decode_head=dict(
        decode_module=dict(
            _delete_=True,
            type='DepthwiseSeparableASPPHead',
            dilations=(1, 12, 24, 36),
            c1_in_channels=256,
            c1_channels=48),
        channels=1024, text_channels=1024, num_classes=60,
        bg_embedding=True))
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=40000,
         by_epoch=False)
]
train_cfg = dict(max_iters=40000, val_interval=4000)
default_hooks = dict(checkpoint=dict(interval=4000))
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.004, momentum=0.9, weight_decay=0.0001))
