# SCLIP (ViT-B/16) on Cityscapes as its repository runs it (wangf3014/SCLIP
# configs/cfg_city_scapes.py): short side 560, slide 224 / 112, logit scale
# 40, no background threshold, PAMR off, class names cityscapes.txt.
# Published: 32.2 mIoU (paper).
#   python tools/test.py configs/ovss/sclip/sclip_vit-b16_cityscapes.py
_base_ = ['./_base_/sclip_vit-b16.py', '../_base_/datasets/cityscapes.py']
model = dict(
    decode_head=dict(
        num_classes={{_base_.num_classes}},
        class_names={{_base_.class_names_file}}))
