# MaskCLIP+ transductive zero-shot on Pascal VOC 2012 + aug (21 classes with
# background): seen classes train on their ground truth, the 5 unseen ones on
# MaskCLIP RN50's pseudo labels until iteration 2000, then on the network's
# own predictions (self-training). A learnable background embedding is class
# 0. Paper: 86.1 mIoU on the unseen classes (mIoU_unseen).
_base_ = [
    '../_base_/models/maskclip_plus_deeplabv2_r101.py',
    '../_base_/datasets/voc12aug_zeroshot.py',
    '../../_base_/default_runtime.py',
    '../_base_/schedules/sgd_poly.py',
]
model = dict(
    data_preprocessor=dict(size={{_base_.crop_size}}),
    # the teacher is this MaskCLIP config's model (its CLIP file, classes,
    # templates and ks/pd settings)
    teacher='{{fileDirname}}/../../maskclip/maskclip_r50_512x512_voc12aug_20.py',
    unseen_classes={{_base_.unseen_classes}},
    self_train_from=2000,
    decode_head=dict(
        channels=1024, text_channels=1024, num_classes=21,
        bg_embedding=True))
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=20000,
         by_epoch=False)
]
train_cfg = dict(max_iters=20000, val_interval=2000)
default_hooks = dict(checkpoint=dict(interval=2000))
