# ProxyCLIP (ViT-B/16, DINO ViT-B/8) on COCO-Object as its repository runs it
# (mc-lan/ProxyCLIP configs/cfg_coco_object.py): short side 336, slide 336 /
# 112, logit scale 40, background below probability 0.25, PAMR off, class names
# coco_object_proxyclip.txt. Published: 37.5 mIoU (paper, Table 1; not checked here).
#   python tools/test.py configs/ovss/proxyclip/proxyclip_vit-b16_coco_object.py
_base_ = ['./_base_/proxyclip_vit-b16.py', '../_base_/datasets/coco_object.py']
model = dict(
    decode_head=dict(
        num_classes={{_base_.num_classes}},
        class_names='configs/ovss/class_names/coco_object_proxyclip.txt'),
    prob_thd=0.25)
