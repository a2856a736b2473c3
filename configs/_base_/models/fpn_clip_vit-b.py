# Baseline: CLIP ViT-B/16 image tower (4-level pyramid, no embeddings) + FPN +
# FPNHead at 640x640, as the reference's fpn_clipvit-b_640x640_80k.py.
_base_ = ['./fpn_clip_r50.py']
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    pretrained='pretrained/ViT-B-16.pt',
    data_preprocessor=dict(size=(640, 640)),
    backbone=dict(
        _delete_=True,
        type='CLIPVisionTransformer',
        input_resolution=640,
        patch_size=16,
        width=768,
        layers=12,
        heads=12,
        output_dim=512,
        drop_path_rate=0.0,  # the reference's default for the baseline
        out_indices=[3, 5, 7, 11],
        get_embeddings=False,
        # the pyramid's BN between the transposed convolutions (reference:
        # nn.SyncBatchNorm; reverted to BN by the runner without distribution)
        norm_cfg=norm_cfg),
    neck=dict(in_channels=[768, 768, 768, 768]),
    test_cfg=dict(crop_size=(640, 640), stride=(426, 426)))
