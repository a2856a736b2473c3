# NACLIP (ViT-B/16) on COCO-Object as its repository runs it (sinahmr/NACLIP
# configs/cfg_coco_object.py): short side 336, slide 224 / 112, logit scale
# 40, background below probability 0.1, PAMR on, class names coco_object.txt.
# Published: 36.19 mIoU (its README, PAMR on), 33.2 (paper, without PAMR).
#   python tools/test.py configs/ovss/naclip/naclip_vit-b16_coco_object.py
_base_ = ['./_base_/naclip_vit-b16.py', '../_base_/datasets/coco_object.py']
model = dict(
    decode_head=dict(
        num_classes={{_base_.num_classes}},
        class_names={{_base_.class_names_file}}),
    prob_thd=0.1)
