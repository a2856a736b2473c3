# maskclip_vit16_1024x512_cityscapes with key smoothing and prompt denoising at
# the reference's thresholds (ks_thresh=1.0: every position whose top
# probability is below 1, i.e. all of them; pd_thresh=0.5).
_base_ = './maskclip_vit16_1024x512_cityscapes.py'
model = dict(decode_head=dict(ks_thresh=1.0, pd_thresh=0.5))
