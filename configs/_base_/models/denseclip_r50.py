# DenseCLIP with CLIP RN50 + FPN (Rao et al., CVPR 2022), ADE20K 150 classes.
# Ported from the reference's _base_/models/denseclip_r50.py and
# denseclip_fpn_res50_512x512_80k.py (the final values of the latter).
_base_ = ['./clip_data_preprocessor.py']
norm_cfg = dict(type='SyncBN', requires_grad=True)
num_classes = 150
model = dict(
    type='DenseCLIP',
    data_preprocessor={{_base_.data_preprocessor}},
    # one OpenAI CLIP file fills the image and the text tower
    pretrained='pretrained/RN50.pt',
    class_names='ade',  # mmseg.utils.get_classes('ade'): ADE20K's 150
    context_length=5,  # tokens of a class name (start/end included)
    text_head=False,
    tau=0.07,
    score_concat_index=3,
    token_embed_dim=512,
    text_dim=1024,
    backbone=dict(
        type='CLIPResNetWithAttention',
        layers=[3, 4, 6, 3],
        output_dim=1024,
        input_resolution=512),
    text_encoder=dict(
        type='CLIPTextContextEncoder',
        context_length=13,  # 8 learnable contexts + 5 name tokens
        embed_dim=1024,
        transformer_width=512,
        transformer_heads=8,
        transformer_layers=12),
    context_decoder=dict(
        type='ContextDecoder',
        transformer_width=256,
        transformer_heads=4,
        transformer_layers=3,
        visual_dim=1024,
        dropout=0.1),
    neck=dict(
        type='FPN',
        # the score map (150 channels) is concatenated to stage 4
        in_channels=[256, 512, 1024, 2048 + num_classes],
        out_channels=256,
        num_outs=4),
    decode_head=dict(
        type='FPNHead',
        in_channels=[256, 256, 256, 256],
        in_index=[0, 1, 2, 3],
        feature_strides=[4, 8, 16, 32],
        channels=256,
        dropout_ratio=0.1,
        num_classes=num_classes,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    # the pixel-text matching loss CE(score_map / tau, y); no parameters
    identity_head=dict(
        type='IdentityHead',
        in_channels=1,
        channels=1,
        num_classes=1,
        dropout_ratio=0.1,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4)),
    train_cfg=dict(),
    # crops of all images are batched, crop_batch_size at a time
    test_cfg=dict(mode='slide', crop_size=(512, 512), stride=(341, 341),
                  crop_batch_size=8))
