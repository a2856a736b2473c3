# MaskCLIP (Zhou et al., ECCV 2022) on CLIP ViT-B/16 (pretrained/ViT-B-16.pt)
# in the training-free protocol: the last block's value path as MaskCLIP's
# own code runs it, x + out_proj(v) then + mlp(ln_2(.)) (no q-k attention),
# then ln_post and proj; cosine similarity with each class name encoded over
# the 80 ImageNet templates; slide windows 224 / 112; softmax(40 * cos) over
# all names, max over a class's synonyms, no PAMR. No paper publishes a
# configuration for MaskCLIP on the 8 benchmarks (the successors' tables
# reprint one row), so its benchmark files use this project's default
# protocol (docs/ovss.md, "Configs"). A benchmark file adds its data, its
# class names and its background threshold. Positions are resized as
# MaskCLIP's own vit.py does (bicubic to the exact token grid,
# pos_interpolation='maskclip'), not with the DINO scale factors of the
# successors' 'bicubic'.
_base_ = ['../../_base_/models/training_free_vit-b16.py']
model = dict(
    backbone=dict(
        dense_last_block=dict(mode='maskclip', residual=True, ffn=True),
        pos_interpolation='maskclip'),
    pamr=None)
