"""A whole training-free segmentor config (MaskCLIP, SCLIP, ClearCLIP,
NACLIP, SC-CLIP, ProxyCLIP) from nothing but an OpenAI CLIP file and class
names (ProxyCLIP: and a vision foundation model's file).

The image tower's type and shape are read from the file (its head counts
too, where it records them: ``read_clip_arch``); each method's
published settings (last block, templates, logit scale, inference windows,
short side: :data:`METHODS`) come from here, so that the demo and scripts
share them. docs/ovss.md lists where they come from.
"""
from typing import List, Optional, Union

from mmengine.config import ConfigDict

from ..clip.arch import read_clip_arch
from ..clip.normalization import CLIP_DATA_PREPROCESSOR
from ..clip.prompt_class_names import ClassNamesSpec, resolve_class_name_sets
from ..clip.prompt_templates import TemplatesSpec
from ..models.segmentors.training_free_segmentor import DEFAULT_CLASS_CHUNK

# method -> its published settings on a CLIP ViT (ViT-B/16): the dense last
# block, templates, logit scale, inference (None: whole image; else crop and
# stride), the short side images are resized to and how positions are resized
# to the token grid (MaskCLIP: its vit.py's exact-grid bicubic)
METHODS = {
    'maskclip': dict(last_block=dict(mode='maskclip'), templates='imagenet85',
                     logit_scale=100., slide=None, short_side=512,
                     pos_interpolation='maskclip'),
    'sclip': dict(last_block=dict(mode='sclip'), templates='imagenet80',
                  logit_scale=40., slide=(224, 112), short_side=336,
                  pos_interpolation='bicubic'),
    'clearclip': dict(last_block=dict(mode='clearclip'),
                      templates='imagenet80', logit_scale=50.,
                      slide=(448, 224), short_side=448,
                      pos_interpolation='bicubic'),
    'naclip': dict(last_block=dict(mode='naclip', gaussian_std=5.),
                   templates='imagenet80', logit_scale=40., slide=(224, 112),
                   short_side=336, pos_interpolation='bicubic'),
    # its layers follow the file's depth (ViT-B: 12 blocks, ViT-L/14: 24;
    # denseclip.models.layers.self_calibrated_block.SCCLIP_LAYERS)
    'scclip': dict(last_block=dict(mode='scclip'), templates='imagenet80',
                   logit_scale=40., slide=(224, 112), short_side=336,
                   pos_interpolation='bicubic'),
    # with a vision foundation model (vfm=; DINO ViT-B/8 in its paper)
    'proxyclip': dict(last_block=dict(mode='proxyclip'),
                      templates='imagenet80', logit_scale=40.,
                      slide=(336, 112), short_side=336,
                      pos_interpolation='bicubic'),
}
# the methods that read a vision foundation model (vfm=)
VFM_METHODS = ('proxyclip', )
# NACLIP's refinement (on by default in its code; here when asked for)
PAMR_SETTINGS = dict(type='PAMR', num_iter=10, dilations=(8, 16))


def method_settings(method: str) -> dict:
    """A copy of ``METHODS[method]``; an unknown name is a ``ValueError``."""
    if method not in METHODS:
        raise ValueError(f'unknown training-free method {method!r}: one of '
                         f'{", ".join(METHODS)}')
    settings = dict(METHODS[method])
    settings['last_block'] = dict(settings['last_block'])
    return settings


def method_test_pipeline(method: str,
                         short_side: Optional[int] = None) -> List[dict]:
    """The method's test pipeline: fit in ``2048 x short_side``, ratio
    kept (the protocol's resize)."""
    short = short_side or method_settings(method)['short_side']
    return [dict(type='LoadImageFromFile'),
            dict(type='Resize', scale=(2048, short), keep_ratio=True),
            dict(type='PackSegInputs')]


def maskclip_model_cfg(clip_file: str,
                       class_names: ClassNamesSpec,
                       ks_thresh: float = 0.,
                       pd_thresh: float = 0.,
                       templates: Optional[TemplatesSpec] = None,
                       text_encoder: Optional[dict] = None,
                       text_cache_dir: Optional[str] = None,
                       method: str = 'maskclip',
                       logit_scale: Optional[float] = None,
                       prob_thd: float = 0.,
                       pamr: Union[bool, dict, None] = None,
                       inference: Optional[str] = None,
                       vision_heads: Optional[int] = None,
                       vfm: Optional[str] = None) -> ConfigDict:
    """``TrainingFreeSegmentor`` config of ``method`` on the CLIP model in
    ``clip_file``.

    Args:
        clip_file: an OpenAI CLIP file (ResNet: ``maskclip`` only).
        class_names: list (an entry may be a list of synonyms), dataset
            name or ``.txt`` file (one class per line, synonyms separated
            by commas).
        method: one of :data:`METHODS`.
        templates, logit_scale: None for the method's.
        prob_thd: background threshold (0: off).
        pamr: True for :data:`PAMR_SETTINGS`, or a PAMR config dict.
        inference: ``'whole'`` or ``'slide'`` (None: the method's).
        vision_heads: ViT heads, for a state dict of a model whose heads
            are not OpenAI's ``width // 64`` (a TorchScript file records
            its own: another count is a ``ValueError``).
        vfm: the vision foundation model's file or name (ProxyCLIP: its
            ``VisionFoundationModel``; required there, refused elsewhere).
        text_encoder: overrides of the text tower config; its
            ``transformer_heads`` as ``vision_heads``. The config gets the
            text heads used, whether read from the file or given.
        ks_thresh, pd_thresh, text_cache_dir: as in
            :class:`~denseclip.models.heads.MaskClipHead`.
    """
    settings = method_settings(method)
    if method in VFM_METHODS and not vfm:
        raise ValueError(
            f'{method} attends with a vision foundation model\'s patch '
            f'affinities: give its file or name (vfm=..., the demo\'s '
            f'--vfm; e.g. dino_vitb8, python tools/download_vfm.py '
            f'dino_vitb8)')
    if vfm and method not in VFM_METHODS:
        raise ValueError(f'vfm is read by {", ".join(VFM_METHODS)} only; '
                         f'method is {method}')
    sets = resolve_class_name_sets(class_names)
    names = [list(s) if len(s) > 1 else s[0] for s in sets.synonyms]
    text_encoder = dict(text_encoder or {})
    arch = read_clip_arch(clip_file, vision_heads,
                          text_encoder.get('transformer_heads'),
                          ('vision_heads', 'text_encoder.transformer_heads'))
    text_encoder['transformer_heads'] = arch.text['transformer_heads']
    backbone = dict(arch.visual)
    backbone.update(pretrained=clip_file, require_clip_weights=True)
    vit = arch.is_vit
    if vit:
        backbone.update(dense_last_block=settings['last_block'],
                        pos_interpolation=settings['pos_interpolation'],
                        get_embeddings=False)
        in_channels, in_index = backbone['width'], -1
    elif method != 'maskclip':
        raise ValueError(
            f'{clip_file} is a CLIP ResNet; {method} changes the last '
            f'attention block of a CLIP ViT: use a ViT file (e.g. '
            f'ViT-B-16) or method maskclip')
    else:
        in_channels, in_index = backbone['width'] * 32, 3
    head = dict(
        type='MaskClipHead',
        vit=vit,
        in_channels=in_channels,
        in_index=in_index,
        channels=0,
        text_channels=backbone['output_dim'],
        num_classes=len(names),
        clip_pretrained=clip_file,
        class_names=names,
        templates=templates or settings['templates'],
        text_encoder=text_encoder,
        text_cache_dir=text_cache_dir,
        ks_thresh=ks_thresh,
        pd_thresh=pd_thresh,
        align_corners=False)
    inference = inference or ('slide' if settings['slide'] else 'whole')
    if inference not in ('whole', 'slide'):
        raise ValueError(f"inference must be 'whole' or 'slide', got "
                         f'{inference!r}')
    test_cfg = dict(mode=inference, class_chunk=DEFAULT_CLASS_CHUNK)
    if inference == 'slide':
        crop, stride = settings['slide'] or (224, 112)
        test_cfg.update(crop_size=(crop, crop), stride=(stride, stride))
    cfg = ConfigDict(
        type='TrainingFreeSegmentor',
        data_preprocessor=dict(CLIP_DATA_PREPROCESSOR),
        backbone=backbone,
        decode_head=head,
        train_cfg=dict(),
        test_cfg=test_cfg)
    # the protocol's keys where they matter (MaskCLIP alone stays a config
    # mmseg's EncoderDecoder takes too)
    if method != 'maskclip' or logit_scale or prob_thd > 0:
        cfg.logit_scale = logit_scale or settings['logit_scale']
    if prob_thd > 0:
        cfg.prob_thd = prob_thd
    if pamr:
        cfg.pamr = dict(PAMR_SETTINGS) if pamr is True else dict(pamr)
    if vfm:
        cfg.vfm = dict(type='VisionFoundationModel', pretrained=vfm)
    return cfg
