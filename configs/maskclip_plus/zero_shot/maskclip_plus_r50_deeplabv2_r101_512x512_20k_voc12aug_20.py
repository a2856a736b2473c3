# MaskCLIP+ transductive zero-shot on Pascal VOC 2012 + aug without
# background (20 classes): seen classes train on their ground truth, the 5
# unseen ones (labels 15-19) on MaskCLIP RN50's pseudo labels until iteration
# 2000, then by self-training. As the reference's
# zero_shot/maskclip_plus_r50_deeplabv2_r101-d8_512x512_20k_voc12aug_20.py
# (released model: 87.8 mIoU, docs/maskclip_plus.md).
_base_ = [
    '../_base_/models/maskclip_plus_deeplabv2_r101.py',
    '../_base_/datasets/voc12aug_20_zeroshot.py',
    '../../_base_/default_runtime.py',
    '../_base_/schedules/sgd_poly.py',
]
model = dict(
    data_preprocessor=dict(size={{_base_.crop_size}}),
    teacher='{{fileDirname}}/../../maskclip/maskclip_r50_512x512_voc12aug_20.py',
    unseen_classes={{_base_.unseen_classes}},
    self_train_from=2000,
    decode_head=dict(channels=1024, text_channels=1024, num_classes=20))
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=20000,
         by_epoch=False)
]
train_cfg = dict(max_iters=20000, val_interval=2000)
default_hooks = dict(checkpoint=dict(interval=2000))
