# SC-CLIP (Bai et al., "Self-Calibrated CLIP for Training-Free
# Open-Vocabulary Segmentation") on CLIP ViT-B/16 (pretrained/ViT-B-16.pt):
# the last block is SC-CLIP's (dense_last_block mode 'scclip'): anomaly
# tokens of its input resolved (local outlier factor, k 30, 5% of the
# tokens, replaced by their 3 x 3 neighbours' mean), attention and
# aggregation self-adjusted by the cosine affinities of blocks 8 and 3
# (threshold 0.4, scale 3), the outputs of blocks 3..9 fused through the
# same attention, 0.3 x the class token added; no residual, no FFN. The
# settings its repository ships (SuleBai/SC-CLIP configs/base_config.py and
# scclip_segmentor.py defaults): the 80 ImageNet templates, synonym class
# files, slide windows 224 / 112, positions resized bicubically,
# softmax(40 * cos) over all names and the max over a class's synonyms, no
# background threshold, no PAMR. A benchmark file adds its data and the
# values its configs/cfg_<benchmark>.py changes. The block's layers follow
# the CLIP's depth (24 blocks, ViT-L/14: 16, 6, 8..18, 0.1; docs/ovss.md).
_base_ = ['../../_base_/models/training_free_vit-b16.py']
model = dict(
    backbone=dict(dense_last_block=dict(mode='scclip')),
    pamr=None)
