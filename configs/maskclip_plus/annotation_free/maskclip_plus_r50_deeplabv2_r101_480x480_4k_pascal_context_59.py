# MaskCLIP+ annotation-free on Pascal Context (59 classes), teacher MaskCLIP
# RN50 (released model: 23.9 mIoU).
_base_ = ['./maskclip_plus_vit16_deeplabv2_r101_480x480_4k_pascal_context_59.py']
model = dict(
    teacher='{{fileDirname}}/../../maskclip/maskclip_r50_520x520_pascal_context_59.py',
    decode_head=dict(channels=1024, text_channels=1024))
