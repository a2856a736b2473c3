# MaskCLIP (ViT-B/16) on VOC20: short side 336, slide 224 / 112, logit scale
# 40, no background threshold, PAMR off, class names voc20.txt (no published
# configuration: this project's default protocol). Published (SCLIP's table,
# reprinted by ClearCLIP and NACLIP): 74.9 mIoU.
#   python tools/test.py configs/ovss/maskclip/maskclip_vit-b16_voc20.py
_base_ = ['./_base_/maskclip_vit-b16.py', '../_base_/datasets/voc20.py']
model = dict(
    decode_head=dict(
        num_classes={{_base_.num_classes}},
        class_names={{_base_.class_names_file}}))
