# MaskCLIP+ annotation-free on Pascal VOC 2012 + aug without background (20
# classes): DeepLabv2-R101 trained for 2k iterations on the pseudo labels of
# MaskCLIP RN50. As the reference's
# anno_free/maskclip_plus_r50_deeplabv2_r101-d8_512x512_2k_voc12aug_20.py
# (released model: 58.0 mIoU, docs/maskclip_plus.md).
_base_ = ['./maskclip_plus_vit16_deeplabv2_r101_512x512_2k_voc12aug_20.py']
model = dict(
    teacher='{{fileDirname}}/../../maskclip/maskclip_r50_512x512_voc12aug_20.py',
    decode_head=dict(channels=1024, text_channels=1024))
