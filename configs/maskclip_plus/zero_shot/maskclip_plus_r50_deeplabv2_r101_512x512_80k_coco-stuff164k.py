# MaskCLIP+ transductive zero-shot on COCO-Stuff 164k (171 classes): the 15
# unseen classes learn from MaskCLIP RN50's pseudo labels until iteration
# 8000, then by self-training. Paper: 54.7 mIoU on the unseen classes
# (mIoU_unseen).
_base_ = [
    '../_base_/models/maskclip_plus_deeplabv2_r101.py',
    '../_base_/datasets/coco-stuff164k_zeroshot.py',
    '../../_base_/default_runtime.py',
    '../_base_/schedules/sgd_poly.py',
]
model = dict(
    data_preprocessor=dict(size={{_base_.crop_size}}),
    # the teacher is this MaskCLIP config's model (its CLIP file, classes,
    # templates and ks/pd settings)
    teacher='{{fileDirname}}/../../maskclip/maskclip_r50_512x512_coco-stuff164k.py',
    unseen_classes={{_base_.unseen_classes}},
    self_train_from=8000,
    decode_head=dict(channels=1024, text_channels=1024, num_classes=171))
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=80000,
         by_epoch=False)
]
train_cfg = dict(max_iters=80000, val_interval=8000)
default_hooks = dict(checkpoint=dict(interval=8000))
