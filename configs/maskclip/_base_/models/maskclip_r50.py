# MaskCLIP on CLIP RN50: the last stage map x5 [B, 2048, H/32, W/32] ->
# c_proj(v_proj(x5)) (the attention pool's projections as 1x1 convolutions)
# -> cosine similarity with the class text embeddings.
# The OpenAI file gives everything: the backbone (backbone.pretrained),
# the projections and, with the class names, the text embeddings
# (decode_head.clip_pretrained; computed at start-up and cached on disk).
# To use another copy of the file set both, e.g.
#   --cfg-options model.backbone.pretrained=X \
#                 model.decode_head.clip_pretrained=X
_base_ = ['./maskclip_data_preprocessor.py']
clip_file = 'pretrained/RN50.pt'
model = dict(
    type='EncoderDecoder',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(
        type='CLIPResNet',
        layers=[3, 4, 6, 3],
        width=64,
        output_dim=1024,
        input_resolution=224,
        pretrained=clip_file,
        # never run on random weights: read the file on first use, or fail
        require_clip_weights=True),
    decode_head=dict(
        type='MaskClipHead',
        vit=False,
        in_channels=2048,
        channels=0,
        in_index=3,
        text_channels=1024,
        num_classes=None,  # set by the dataset config
        clip_pretrained=clip_file,
        class_names=None,  # set by the dataset config
        templates='imagenet85',
        ks_thresh=0.,
        pd_thresh=0.,
        align_corners=False),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
