# ProxyCLIP (ViT-B/16, DINO ViT-B/8) on VOC21 as its repository runs it
# (mc-lan/ProxyCLIP configs/cfg_voc21.py): short side 336, slide 336 /
# 112, logit scale 40, background below probability 0.2, PAMR off, class names
# voc21_proxyclip.txt. Published: 61.3 mIoU (paper, Table 1; not checked here).
#   python tools/test.py configs/ovss/proxyclip/proxyclip_vit-b16_voc21.py
_base_ = ['./_base_/proxyclip_vit-b16.py', '../_base_/datasets/voc21.py']
model = dict(
    decode_head=dict(
        num_classes={{_base_.num_classes}},
        class_names='configs/ovss/class_names/voc21_proxyclip.txt'),
    prob_thd=0.2)
