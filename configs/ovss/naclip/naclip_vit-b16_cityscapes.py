# NACLIP (ViT-B/16) on Cityscapes as its repository runs it (sinahmr/NACLIP
# configs/cfg_city_scapes.py): short side 560, slide 224 / 112, logit scale
# 40, no background threshold, PAMR on, class names cityscapes.txt.
# Published: 38.27 mIoU (its README, PAMR on), 35.5 (paper, without PAMR).
#   python tools/test.py configs/ovss/naclip/naclip_vit-b16_cityscapes.py
_base_ = ['./_base_/naclip_vit-b16.py', '../_base_/datasets/cityscapes.py']
model = dict(
    decode_head=dict(
        num_classes={{_base_.num_classes}},
        class_names={{_base_.class_names_file}}))
