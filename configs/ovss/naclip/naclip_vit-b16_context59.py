# NACLIP (ViT-B/16) on Context59 as its repository runs it (sinahmr/NACLIP
# configs/cfg_context59.py): short side 336, slide 224 / 112, logit scale 40,
# no background threshold, PAMR on, class names context59.txt. Published:
# 38.35 mIoU (its README, PAMR on), 35.2 (paper, without PAMR).
#   python tools/test.py configs/ovss/naclip/naclip_vit-b16_context59.py
_base_ = ['./_base_/naclip_vit-b16.py', '../_base_/datasets/context59.py']
model = dict(
    decode_head=dict(
        num_classes={{_base_.num_classes}},
        class_names={{_base_.class_names_file}}))
