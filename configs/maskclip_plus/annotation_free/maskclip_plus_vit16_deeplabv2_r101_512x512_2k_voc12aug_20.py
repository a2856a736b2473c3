# MaskCLIP+ annotation-free on Pascal VOC 2012 + aug without background (20
# classes): DeepLabv2-R101 trained for 2k iterations on the pseudo labels of
# MaskCLIP ViT-B/16 (no ground-truth class is used). As the reference's
# anno_free/maskclip_plus_vit16_deeplabv2_r101-d8_512x512_2k_voc12aug_20.py.
_base_ = [
    '../_base_/models/maskclip_plus_deeplabv2_r101.py',
    '../_base_/datasets/voc12aug_20_annofree.py',
    '../../_base_/default_runtime.py',
    '../_base_/schedules/sgd_poly.py',
]
model = dict(
    data_preprocessor=dict(size={{_base_.crop_size}}),
    # the teacher is this MaskCLIP config's model (its CLIP file, classes,
    # templates and ks/pd settings)
    teacher='{{fileDirname}}/../../maskclip/maskclip_vit16_512x512_voc12aug_20.py',
    decode_head=dict(channels=512, text_channels=512, num_classes=20))
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=2000,
         by_epoch=False)
]
train_cfg = dict(max_iters=2000, val_interval=2000)
default_hooks = dict(checkpoint=dict(interval=2000))
