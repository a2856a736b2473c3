# SC-CLIP (ViT-B/16) on COCO-Object as its repository runs it (SuleBai/SC-
# CLIP configs/cfg_coco_object.py): short side 336, slide 224 / 112, logit
# scale 55, background below probability 0.35, PAMR off, class names
# coco_object.txt. Published: 37.7 mIoU (paper, Table 1).
#   python tools/test.py configs/ovss/scclip/scclip_vit-b16_coco_object.py
_base_ = ['./_base_/scclip_vit-b16.py', '../_base_/datasets/coco_object.py']
model = dict(
    decode_head=dict(
        num_classes={{_base_.num_classes}},
        class_names={{_base_.class_names_file}}),
    logit_scale=55.0,
    prob_thd=0.35)
