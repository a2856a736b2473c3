# MaskCLIP on CLIP ViT-B/16: the last block's value path
#   v = out_proj(v_proj(ln_1(x))) + x;  v = v + mlp(ln_2(v));  ln_post(v)
# (the backbone's return_value_path output, with the block's keys for key
# smoothing) -> proj -> cosine similarity with the class text embeddings.
# The OpenAI file gives everything (see maskclip_r50.py). Positions are
# resized as MaskCLIP's vit.py does: bicubic to the exact token grid
# (pos_interpolation='maskclip'; docs/ovss.md).
_base_ = ['./maskclip_data_preprocessor.py']
clip_file = 'pretrained/ViT-B-16.pt'
model = dict(
    type='EncoderDecoder',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(
        type='CLIPVisionTransformer',
        input_resolution=224,
        patch_size=16,
        width=768,
        layers=12,
        heads=12,
        output_dim=512,
        out_indices=(),  # no feature pyramid
        get_embeddings=False,
        return_value_path=True,
        pos_interpolation='maskclip',
        pretrained=clip_file,
        require_clip_weights=True),
    decode_head=dict(
        type='MaskClipHead',
        vit=True,
        in_channels=768,
        channels=0,
        in_index=-1,
        text_channels=512,
        num_classes=None,  # set by the dataset config
        clip_pretrained=clip_file,
        class_names=None,  # set by the dataset config
        templates='imagenet85',
        ks_thresh=0.,
        pd_thresh=0.,
        align_corners=False),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
