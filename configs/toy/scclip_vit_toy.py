# SC-CLIP on the toy ViT CLIP: configs/toy/maskclip_vit_toy.py with SC-CLIP's
# last block (anomaly tokens of its input resolved, attention and aggregation
# self-adjusted by intermediate affinities, multi-level fusion; no residual,
# no FFN) and positions resized bicubically, as its code does. SC-CLIP
# publishes its layers for 12 and 24 blocks; for the toy's 3, its ViT-B/16
# choice (of the 11 blocks before the last: the 9th for the attention, the
# 4th for the aggregation after it, the 4th..10th fused) is carried over by
# position, fixed before any toy number was seen: block 1 (the last before
# the last), block 0, blocks 0..1; the class token's weight 0.3 (ViT-B's).
#   python tools/toy_demo.py --config configs/toy/scclip_vit_toy.py
_base_ = ['./maskclip_vit_toy.py']
model = dict(
    backbone=dict(
        dense_last_block=dict(
            mode='scclip',
            self_adjust=dict(pre_layer=1, post_layer=0),
            fusion=dict(layers=(0, 2)),
            cls_weight=0.3),
        pos_interpolation='bicubic'))
