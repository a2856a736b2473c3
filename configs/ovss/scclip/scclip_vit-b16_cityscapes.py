# SC-CLIP (ViT-B/16) on Cityscapes as its repository runs it (SuleBai/SC-CLIP
# configs/cfg_city_scapes.py): short side 560, slide 224 / 112, logit scale
# 40, no background threshold, PAMR off, class names cityscapes.txt.
# Published: 41.0 mIoU (paper, Table 1).
#   python tools/test.py configs/ovss/scclip/scclip_vit-b16_cityscapes.py
_base_ = ['./_base_/scclip_vit-b16.py', '../_base_/datasets/cityscapes.py']
model = dict(
    decode_head=dict(
        num_classes={{_base_.num_classes}},
        class_names={{_base_.class_names_file}}))
