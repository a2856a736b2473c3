# The paper's feature-distillation ablation: as the ViT-B/16 Pascal Context
# run, but the student's features learn MaskCLIP's dense features (L1)
# instead of its pseudo labels. As the reference's
# anno_free/maskclip_plus_distill_vit16_deeplabv2_r101-d8_480x480_4k_pascal_context_59.py.
_base_ = ['./maskclip_plus_vit16_deeplabv2_r101_480x480_4k_pascal_context_59.py']
model = dict(distill=True, distill_labeled=True, distill_weight=1.)
