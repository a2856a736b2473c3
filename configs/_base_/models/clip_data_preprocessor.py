# CLIP's input normalisation (RGB, 0..255 scale): OpenAI's
# mean (0.48145466, 0.4578275, 0.40821073) and std (0.26862954, 0.26130258,
# 0.27577711) times 255. Shared by every CLIP-backbone model base.
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[122.7709, 116.7460, 104.0937],
    std=[68.5005, 66.6322, 70.3232],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=(512, 512))
