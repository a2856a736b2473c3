# MaskCLIP+ annotation-free on COCO-Stuff 164k (171 classes), teacher MaskCLIP
# RN50 (released model: 13.8 mIoU).
_base_ = ['./maskclip_plus_vit16_deeplabv2_r101_512x512_8k_coco-stuff164k.py']
model = dict(
    teacher='{{fileDirname}}/../../maskclip/maskclip_r50_512x512_coco-stuff164k.py',
    decode_head=dict(channels=1024, text_channels=1024))
