# MaskCLIP with CLIP RN50x16 (pretrained/RN50x16.pt) on COCO-Stuff 164k val
# (171 classes): whole-image inference, no training. The paper (annotation-free
# MaskCLIP): 13.6 mIoU.
_base_ = [
    './_base_/models/maskclip_r50x16.py',
    './_base_/datasets/coco-stuff164k.py',
    '../_base_/default_runtime.py',
    './_base_/maskclip_test_runtime.py',
]
model = dict(decode_head=dict(num_classes=171, class_names='coco_stuff164k'))
