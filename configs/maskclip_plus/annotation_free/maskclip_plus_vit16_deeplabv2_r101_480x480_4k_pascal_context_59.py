# MaskCLIP+ annotation-free on Pascal Context (59 classes): DeepLabv2-R101
# trained for 4k iterations on the pseudo labels of MaskCLIP ViT-B/16. Paper
# (reference README): 31.1 mIoU.
_base_ = [
    '../_base_/models/maskclip_plus_deeplabv2_r101.py',
    '../_base_/datasets/pascal_context_59_annofree.py',
    '../../_base_/default_runtime.py',
    '../_base_/schedules/sgd_poly.py',
]
model = dict(
    data_preprocessor=dict(size={{_base_.crop_size}}),
    # the teacher is this MaskCLIP config's model (its CLIP file, classes,
    # templates and ks/pd settings)
    teacher='{{fileDirname}}/../../maskclip/maskclip_vit16_520x520_pascal_context_59.py',
    decode_head=dict(channels=512, text_channels=512, num_classes=59))
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=4000,
         by_epoch=False)
]
train_cfg = dict(max_iters=4000, val_interval=4000)
default_hooks = dict(checkpoint=dict(interval=4000))
