# ProxyCLIP (ViT-L/14, DINO ViT-B/8) on context60 under this project's default protocol: the
# settings of proxyclip_vit-b16_context60_default.py on CLIP ViT-L/14
# (pretrained/ViT-L-14.pt, configs/ovss/_base_/models/clip_vit-l14.py), as
# ProxyCLIP's code runs every CLIP. Published ViT-L/14 mIoU: not carried here.
#   python tools/test.py configs/ovss/proxyclip/proxyclip_vit-l14_context60_default.py
_base_ = ['./proxyclip_vit-b16_context60_default.py',
          '../_base_/models/clip_vit-l14.py']
clip_file = {{_base_.vit_l14_file}}
model = dict(backbone={{_base_.vit_l14_backbone}},
             decode_head={{_base_.vit_l14_head}})
