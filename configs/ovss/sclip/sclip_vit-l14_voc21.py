# SCLIP (ViT-L/14) on VOC21 under its published settings: the settings of
# sclip_vit-b16_voc21.py on CLIP ViT-L/14 (pretrained/ViT-L-14.pt,
# configs/ovss/_base_/models/clip_vit-l14.py). SCLIP's repository
# (wangf3014/SCLIP) has one set of settings for every CLIP: clip_segmentor.py
# loads the CLIP by name and its configs/cfg_*.py hold no backbone-dependent
# value, so ViT-L/14 runs with the ViT-B/16 settings. Published ViT-L/14 mIoU:
# none found (docs/ovss.md, "ViT-L/14").
#   python tools/test.py configs/ovss/sclip/sclip_vit-l14_voc21.py
_base_ = ['./sclip_vit-b16_voc21.py',
          '../_base_/models/clip_vit-l14.py']
clip_file = {{_base_.vit_l14_file}}
model = dict(backbone={{_base_.vit_l14_backbone}},
             decode_head={{_base_.vit_l14_head}})
