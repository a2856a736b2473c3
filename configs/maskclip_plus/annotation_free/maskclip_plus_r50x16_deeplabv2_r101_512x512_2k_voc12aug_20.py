# MaskCLIP+ annotation-free on Pascal VOC 2012 + aug without background (20
# classes), teacher MaskCLIP RN50x16 (released model: 67.5 mIoU).
_base_ = ['./maskclip_plus_vit16_deeplabv2_r101_512x512_2k_voc12aug_20.py']
model = dict(
    teacher='{{fileDirname}}/../../maskclip/maskclip_r50x16_512x512_voc12aug_20.py',
    decode_head=dict(channels=768, text_channels=768))
