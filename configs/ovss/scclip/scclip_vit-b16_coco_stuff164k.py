# SC-CLIP (ViT-B/16) on COCO-Stuff as its repository runs it (SuleBai/SC-CLIP
# configs/cfg_coco_stuff164k.py): short side 336, slide 224 / 112, logit
# scale 40, no background threshold, PAMR off, class names
# coco_stuff164k.txt. Published: 26.6 mIoU (paper, Table 1).
#   python tools/test.py configs/ovss/scclip/scclip_vit-b16_coco_stuff164k.py
_base_ = ['./_base_/scclip_vit-b16.py', '../_base_/datasets/coco_stuff164k.py']
model = dict(
    decode_head=dict(
        num_classes={{_base_.num_classes}},
        class_names={{_base_.class_names_file}}))
