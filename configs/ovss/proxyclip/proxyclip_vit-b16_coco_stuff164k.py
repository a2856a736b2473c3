# ProxyCLIP (ViT-B/16, DINO ViT-B/8) on COCO-Stuff as its repository runs it
# (mc-lan/ProxyCLIP configs/cfg_coco_stuff164k.py): short side 336, slide 336 /
# 112, logit scale 40, no background threshold, PAMR off, class names
# coco_stuff164k.txt. Published: 26.5 mIoU (paper, Table 1; not checked here).
#   python tools/test.py configs/ovss/proxyclip/proxyclip_vit-b16_coco_stuff164k.py
_base_ = ['./_base_/proxyclip_vit-b16.py', '../_base_/datasets/coco_stuff164k.py']
model = dict(
    decode_head=dict(
        num_classes={{_base_.num_classes}},
        class_names={{_base_.class_names_file}}))
