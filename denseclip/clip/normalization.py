"""CLIP's input normalisation, the one place it is written down.

OpenAI's mean (0.48145466, 0.4578275, 0.40821073) and std (0.26862954,
0.26130258, 0.27577711), x 255 for mmseg's 0..255 RGB inputs. The configs
repeat them once, in ``configs/_base_/models/clip_data_preprocessor.py``
(a test checks that the two agree).
"""
CLIP_MEAN = (122.7709, 116.7460, 104.0937)
CLIP_STD = (68.5005, 66.6322, 70.3232)

# mmseg's data preprocessor for CLIP inputs (images are loaded BGR)
CLIP_DATA_PREPROCESSOR = dict(
    type='SegDataPreProcessor',
    mean=list(CLIP_MEAN),
    std=list(CLIP_STD),
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255)
