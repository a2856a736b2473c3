# As maskclip_plus_vit16_deeplabv2_r101_480x480_4k_pascal_context_59.py
# (MaskCLIP+ annotation-free, Pascal Context (59 classes), 4k iterations, on
# the pseudo labels of MaskCLIP ViT-B/16) with a DeepLabv2-R50 student: the
# MaskCLIP reference's config of this setting builds a ResNet-50 although its
# name says r101, so its released file may hold either (docs/maskclip_plus.md,
# Released checkpoints); tools/test.py names the config a file fits.
_base_ = ['./maskclip_plus_vit16_deeplabv2_r101_480x480_4k_pascal_context_59.py']
model = dict(
    backbone=dict(
        depth=50,
        init_cfg=dict(type='Pretrained',
                      checkpoint='open-mmlab://resnet50_v1c')))
