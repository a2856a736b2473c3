# NACLIP (ViT-B/16) on COCO-Stuff 164k as its repository runs it
# (sinahmr/NACLIP configs/cfg_coco_stuff164k.py): short side 336, slide 224 /
# 112, logit scale 40, no background threshold, PAMR on, class names
# coco_stuff164k.txt. Published: 25.69 mIoU (its README, PAMR on), 23.3
# (paper, without PAMR).
#   python tools/test.py configs/ovss/naclip/naclip_vit-b16_coco_stuff164k.py
_base_ = ['./_base_/naclip_vit-b16.py', '../_base_/datasets/coco_stuff164k.py']
model = dict(
    decode_head=dict(
        num_classes={{_base_.num_classes}},
        class_names={{_base_.class_names_file}}))
