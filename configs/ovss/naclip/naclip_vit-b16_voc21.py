# NACLIP (ViT-B/16) on VOC21 as its repository runs it (sinahmr/NACLIP
# configs/cfg_voc21.py): short side 336, the whole image, logit scale 40,
# background below probability 0.1, PAMR on, class names voc21.txt.
# Published: 64.07 mIoU (its README, PAMR on), 58.9 (paper, without PAMR).
#   python tools/test.py configs/ovss/naclip/naclip_vit-b16_voc21.py
_base_ = ['./_base_/naclip_vit-b16.py', '../_base_/datasets/voc21.py']
model = dict(
    decode_head=dict(
        num_classes={{_base_.num_classes}},
        class_names={{_base_.class_names_file}}),
    prob_thd=0.1,
    test_cfg=dict(_delete_=True, mode='whole'))
