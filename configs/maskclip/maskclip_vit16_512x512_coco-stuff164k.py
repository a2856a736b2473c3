# MaskCLIP with CLIP ViT-B/16 (pretrained/ViT-B-16.pt) on COCO-Stuff 164k val
# (171 classes): whole-image inference, no training. The paper (annotation-free
# MaskCLIP): 12.5 mIoU.
_base_ = [
    './_base_/models/maskclip_vit16.py',
    './_base_/datasets/coco-stuff164k.py',
    '../_base_/default_runtime.py',
    './_base_/maskclip_test_runtime.py',
]
model = dict(decode_head=dict(num_classes=171, class_names='coco_stuff164k'))
