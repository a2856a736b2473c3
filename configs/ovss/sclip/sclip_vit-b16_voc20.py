# SCLIP (ViT-B/16) on VOC20 as its repository runs it (wangf3014/SCLIP
# configs/cfg_voc20.py): short side 336, slide 224 / 112, logit scale 40, no
# background threshold, PAMR off, class names voc20.txt. Published: 80.4 mIoU
# (paper).
#   python tools/test.py configs/ovss/sclip/sclip_vit-b16_voc20.py
_base_ = ['./_base_/sclip_vit-b16.py', '../_base_/datasets/voc20.py']
model = dict(
    decode_head=dict(
        num_classes={{_base_.num_classes}},
        class_names={{_base_.class_names_file}}))
