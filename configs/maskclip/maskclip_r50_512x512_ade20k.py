# MaskCLIP with CLIP RN50 (pretrained/RN50.pt) on ADE20K val (150 classes):
# whole-image inference, no training. The paper reports no number for this
# setting.
_base_ = [
    './_base_/models/maskclip_r50.py',
    './_base_/datasets/ade20k.py',
    '../_base_/default_runtime.py',
    './_base_/maskclip_test_runtime.py',
]
model = dict(decode_head=dict(num_classes=150, class_names='ade'))
