# MaskCLIP with CLIP RN50 (pretrained/RN50.pt) on COCO-Stuff 164k val (171
# classes): whole-image inference, no training. The paper (annotation-free
# MaskCLIP): 10.2 mIoU.
_base_ = [
    './_base_/models/maskclip_r50.py',
    './_base_/datasets/coco-stuff164k.py',
    '../_base_/default_runtime.py',
    './_base_/maskclip_test_runtime.py',
]
model = dict(decode_head=dict(num_classes=171, class_names='coco_stuff164k'))
