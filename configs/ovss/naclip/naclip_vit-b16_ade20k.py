# NACLIP (ViT-B/16) on ADE20K as its repository runs it (sinahmr/NACLIP
# configs/cfg_ade20k.py): short side 336, slide 224 / 112, logit scale 40, no
# background threshold, PAMR on, class names ade20k.txt. Published: 19.05
# mIoU (its README, PAMR on), 17.4 (paper, without PAMR).
#   python tools/test.py configs/ovss/naclip/naclip_vit-b16_ade20k.py
_base_ = ['./_base_/naclip_vit-b16.py', '../_base_/datasets/ade20k.py']
model = dict(
    decode_head=dict(
        num_classes={{_base_.num_classes}},
        class_names={{_base_.class_names_file}}))
