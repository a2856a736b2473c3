# MaskCLIP+ annotation-free on Pascal Context (59 classes), teacher MaskCLIP
# RN50x16 (released model: 25.2 mIoU).
_base_ = ['./maskclip_plus_vit16_deeplabv2_r101_480x480_4k_pascal_context_59.py']
model = dict(
    teacher='{{fileDirname}}/../../maskclip/maskclip_r50x16_520x520_pascal_context_59.py',
    decode_head=dict(channels=768, text_channels=768))
