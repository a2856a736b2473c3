# MaskCLIP with CLIP ViT-B/16 (pretrained/ViT-B-16.pt) on Cityscapes val (19
# classes): whole-image inference, no training. The paper reports no number for
# this setting.
_base_ = [
    './_base_/models/maskclip_vit16.py',
    './_base_/datasets/cityscapes.py',
    '../_base_/default_runtime.py',
    './_base_/maskclip_test_runtime.py',
]
model = dict(decode_head=dict(num_classes=19, class_names='cityscapes'))
