# CLIP's input normalisation (configs/_base_/models/clip_data_preprocessor.py)
# for whole-image inference of one image at a time: no padding size.
_base_ = ['../../../_base_/models/clip_data_preprocessor.py']
data_preprocessor = dict(size=None)
