# CLIP ViT-L/14 (OpenAI's pretrained/ViT-L-14.pt: 14 px patches, width 1024,
# 24 blocks of 16 heads, 224 px, embedding 768; its text tower is read from
# the file by the head) as the image tower of a training-free config. A
# ViT-L/14 benchmark file inherits its ViT-B/16 sibling and this file, and
# sets
#   clip_file = {{_base_.vit_l14_file}}
#   model = dict(backbone={{_base_.vit_l14_backbone}},
#                decode_head={{_base_.vit_l14_head}})
# (names of their own: two bases may not both set `model`). The benchmark's
# windows, strides and short side stay the sibling's: all are multiples of
# 14 (224, 112, 336, 448, 560; tests/test_ovss_configs.py checks it).
vit_l14_file = 'pretrained/ViT-L-14.pt'
vit_l14_backbone = dict(
    input_resolution=224, patch_size=14, width=1024, layers=24, heads=16,
    output_dim=768, pretrained=vit_l14_file)
vit_l14_head = dict(in_channels=1024, text_channels=768,
                    clip_pretrained=vit_l14_file)
