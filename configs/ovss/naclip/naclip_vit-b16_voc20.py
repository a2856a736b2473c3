# NACLIP (ViT-B/16) on VOC20 as its repository runs it (sinahmr/NACLIP
# configs/cfg_voc20.py): short side 336, the whole image, logit scale 40, no
# background threshold, PAMR on, class names voc20.txt. Published: 83.03 mIoU
# (its README, PAMR on), 79.7 (paper, without PAMR).
#   python tools/test.py configs/ovss/naclip/naclip_vit-b16_voc20.py
_base_ = ['./_base_/naclip_vit-b16.py', '../_base_/datasets/voc20.py']
model = dict(
    decode_head=dict(
        num_classes={{_base_.num_classes}},
        class_names={{_base_.class_names_file}}),
    test_cfg=dict(_delete_=True, mode='whole'))
