# maskclip_vit16_512x512_ade20k with key smoothing and prompt denoising at the
# reference's thresholds (ks_thresh=1.0: every position whose top probability
# is below 1, i.e. all of them; pd_thresh=0.5).
_base_ = './maskclip_vit16_512x512_ade20k.py'
model = dict(decode_head=dict(ks_thresh=1.0, pd_thresh=0.5))
