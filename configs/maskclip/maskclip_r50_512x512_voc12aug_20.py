# MaskCLIP with CLIP RN50 (pretrained/RN50.pt) on Pascal VOC 2012 val without
# background (20 classes): whole-image inference, no training. The paper
# (annotation-free MaskCLIP): 41.5 mIoU.
_base_ = [
    './_base_/models/maskclip_r50.py',
    './_base_/datasets/pascal_voc12_20.py',
    '../_base_/default_runtime.py',
    './_base_/maskclip_test_runtime.py',
]
model = dict(decode_head=dict(num_classes=20, class_names='voc20'))
