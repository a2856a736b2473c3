# NACLIP (ViT-B/16) on Context60 as its repository runs it (sinahmr/NACLIP
# configs/cfg_context60.py): short side 336, slide 224 / 112, logit scale 40,
# background below probability 0.1, PAMR on, class names context60.txt.
# Published: 34.99 mIoU (its README, PAMR on), 32.2 (paper, without PAMR).
#   python tools/test.py configs/ovss/naclip/naclip_vit-b16_context60.py
_base_ = ['./_base_/naclip_vit-b16.py', '../_base_/datasets/context60.py']
model = dict(
    decode_head=dict(
        num_classes={{_base_.num_classes}},
        class_names={{_base_.class_names_file}}),
    prob_thd=0.1)
