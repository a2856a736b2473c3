# As maskclip_plus_vit16_deeplabv2_r101_512x512_300_web_image.py with a
# DeepLabv2-R50 student: the reference's anno_free/web_image/
# maskclip_plus_vit16_deeplabv2_r101-d8_512x512_300_{blur,car_brands,
# sports}.py (whose base student is R-50 despite the file names).
_base_ = ['./maskclip_plus_vit16_deeplabv2_r101_512x512_300_web_image.py']
model = dict(
    backbone=dict(
        depth=50,
        init_cfg=dict(type='Pretrained',
                      checkpoint='open-mmlab://resnet50_v1c')))
