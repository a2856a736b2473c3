# MaskCLIP with CLIP RN50x16 (pretrained/RN50x16.pt) on Pascal VOC 2012 val
# without background (20 classes): whole-image inference, no training. The
# paper (annotation-free MaskCLIP): 50.9 mIoU.
_base_ = [
    './_base_/models/maskclip_r50x16.py',
    './_base_/datasets/pascal_voc12_20.py',
    '../_base_/default_runtime.py',
    './_base_/maskclip_test_runtime.py',
]
model = dict(decode_head=dict(num_classes=20, class_names='voc20'))
