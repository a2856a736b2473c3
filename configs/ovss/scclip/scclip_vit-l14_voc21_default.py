# SC-CLIP (ViT-L/14) on voc21 under this project's default protocol: the
# settings of scclip_vit-b16_voc21_default.py on CLIP ViT-L/14 (pretrained/ViT-L-14.pt,
# configs/ovss/_base_/models/clip_vit-l14.py). This project's default
# protocol does not depend on the CLIP.
#   python tools/test.py configs/ovss/scclip/scclip_vit-l14_voc21_default.py
_base_ = ['./scclip_vit-b16_voc21_default.py',
          '../_base_/models/clip_vit-l14.py']
clip_file = {{_base_.vit_l14_file}}
model = dict(backbone={{_base_.vit_l14_backbone}},
             decode_head={{_base_.vit_l14_head}})
