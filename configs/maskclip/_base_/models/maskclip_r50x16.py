# MaskCLIP on CLIP RN50x16 (stage 4: 3072 channels, embedding 768, 384 px).
_base_ = ['./maskclip_r50.py']
clip_file = 'pretrained/RN50x16.pt'
model = dict(
    backbone=dict(
        layers=[6, 8, 18, 8],
        width=96,
        output_dim=768,
        input_resolution=384,
        pretrained=clip_file),
    decode_head=dict(
        in_channels=3072, text_channels=768, clip_pretrained=clip_file))
