# SCLIP (ViT-B/16) on COCO-Object as its repository runs it (wangf3014/SCLIP
# configs/cfg_coco_object.py): short side 336, slide 224 / 112, logit scale
# 50, background below probability 0.1, PAMR off, class names
# coco_object.txt. Published: 30.5 mIoU (paper).
#   python tools/test.py configs/ovss/sclip/sclip_vit-b16_coco_object.py
_base_ = ['./_base_/sclip_vit-b16.py', '../_base_/datasets/coco_object.py']
model = dict(
    decode_head=dict(
        num_classes={{_base_.num_classes}},
        class_names={{_base_.class_names_file}}),
    logit_scale=50.0,
    prob_thd=0.1)
