# MaskCLIP with CLIP RN50x16 (pretrained/RN50x16.pt) on Pascal Context val (59
# classes): whole-image inference, no training. The paper (annotation-free
# MaskCLIP): 20.3 mIoU.
_base_ = [
    './_base_/models/maskclip_r50x16.py',
    './_base_/datasets/pascal_context_59.py',
    '../_base_/default_runtime.py',
    './_base_/maskclip_test_runtime.py',
]
model = dict(decode_head=dict(num_classes=59, class_names='pascal_context59'))
