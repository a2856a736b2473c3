# MaskCLIP with CLIP RN50 (pretrained/RN50.pt) on Pascal Context val (59
# classes): whole-image inference, no training. The paper (annotation-free
# MaskCLIP): 18.5 mIoU.
_base_ = [
    './_base_/models/maskclip_r50.py',
    './_base_/datasets/pascal_context_59.py',
    '../_base_/default_runtime.py',
    './_base_/maskclip_test_runtime.py',
]
model = dict(decode_head=dict(num_classes=59, class_names='pascal_context59'))
