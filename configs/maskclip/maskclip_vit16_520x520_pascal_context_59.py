# MaskCLIP with CLIP ViT-B/16 (pretrained/ViT-B-16.pt) on Pascal Context val
# (59 classes): whole-image inference, no training. The paper (annotation-free
# MaskCLIP): 21.7 mIoU.
_base_ = [
    './_base_/models/maskclip_vit16.py',
    './_base_/datasets/pascal_context_59.py',
    '../_base_/default_runtime.py',
    './_base_/maskclip_test_runtime.py',
]
model = dict(decode_head=dict(num_classes=59, class_names='pascal_context59'))
