# MaskCLIP (ViT-B/16) on ADE20K: short side 336, slide 224 / 112, logit scale
# 40, no background threshold, PAMR off, class names ade20k.txt (no published
# configuration: this project's default protocol). Published (SCLIP's table,
# reprinted by ClearCLIP and NACLIP): 9.8 mIoU.
#   python tools/test.py configs/ovss/maskclip/maskclip_vit-b16_ade20k.py
_base_ = ['./_base_/maskclip_vit-b16.py', '../_base_/datasets/ade20k.py']
model = dict(
    decode_head=dict(
        num_classes={{_base_.num_classes}},
        class_names={{_base_.class_names_file}}))
