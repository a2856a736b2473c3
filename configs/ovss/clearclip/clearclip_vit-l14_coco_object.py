# ClearCLIP (ViT-L/14) on COCO-Object under its published settings: the
# settings of clearclip_vit-b16_coco_object.py on CLIP ViT-L/14
# (pretrained/ViT-L-14.pt, configs/ovss/_base_/models/clip_vit-l14.py).
# ClearCLIP's repository (mc-lan/ClearCLIP) runs ViT-L/14 by
# configs/base_config.py vit_type='ViT-L-14' alone: the same windows, short
# side, logit scale and thresholds as ViT-B/16. Published ViT-L/14 mIoU: none
# found (docs/ovss.md, "ViT-L/14").
#   python tools/test.py configs/ovss/clearclip/clearclip_vit-l14_coco_object.py
_base_ = ['./clearclip_vit-b16_coco_object.py',
          '../_base_/models/clip_vit-l14.py']
clip_file = {{_base_.vit_l14_file}}
model = dict(backbone={{_base_.vit_l14_backbone}},
             decode_head={{_base_.vit_l14_head}})
