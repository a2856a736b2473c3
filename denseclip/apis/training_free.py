"""A training-free segmentor (MaskCLIP, SCLIP, ClearCLIP, NACLIP, SC-CLIP,
ProxyCLIP with a vision foundation model) from a CLIP, a method and class
names, ready for mmseg's ``inference_model`` and
``SegLocalVisualizer``::

    from mmseg.apis import inference_model
    from denseclip.apis import training_free_model
    model = training_free_model('pretrained/ViT-B-16.pt',
                                'sky|cloud,building,tree', method='naclip')
    result = inference_model(model, 'photo.jpg')  # SegDataSample

``tools/maskclip_demo.py`` builds its model here.
"""
import os.path as osp
from typing import List, Optional, Sequence, Tuple, Union

import torch
from mmengine.config import Config
from mmseg.registry import MODELS
from mmseg.utils import register_all_modules

from ..clip.files import find_clip_file
from ..clip.arch import ClipArch, read_clip_arch
from ..clip.class_names import ClassNames
from ..clip.prompt_class_names import resolve_class_name_sets
from ..utils.tool_output import quiet_warnings
from ..visualization import make_palette
from .maskclip_model import (maskclip_model_cfg, method_settings,
                             method_test_pipeline)

# with a CLIP ViT (the papers' best on average); a ResNet has only MaskCLIP
DEFAULT_METHOD = 'naclip'
# between the synonyms of one class in a string ("sky|cloud,tree")
SYNONYM_SEPARATOR = '|'

# a string ("sky|cloud,tree"), a dataset name ('ade'), a .txt file, a list
# (an entry a name, "sky|cloud" or a list of synonyms) or ClassNames
ClassesSpec = Union[str, Sequence[Union[str, Sequence[str]]], ClassNames]


def resolve_clip(clip: str) -> str:
    """The CLIP file that ``clip`` names: a path, a name of the table
    (``'ViT-B/16'``, ``'ViT-B-16/metaclip_fullcc'``) looked up under
    ``pretrained/``, or ``'hf-hub:ORG/REPO'`` (from huggingface_hub's cache).
    The one place where the API turns a CLIP's name into a file."""
    return find_clip_file(clip)


def parse_classes(classes: ClassesSpec) -> ClassNames:
    """Class names with synonyms from any of :data:`ClassesSpec`.

    A string with a comma or ``|`` is a list: commas between classes, ``|``
    between the synonyms of a class (``"sky|cloud,red car|automobile"``);
    another string is a ``.txt`` file (one class per line, synonyms
    separated by commas) or a dataset name (``'ade'``, ``'voc20'``). Errors
    name the class or line at fault.
    """
    if isinstance(classes, ClassNames):
        return classes
    if isinstance(classes, str):
        if classes.endswith('.txt') or osp.isfile(classes):
            return resolve_class_name_sets(classes)
        if ',' not in classes and SYNONYM_SEPARATOR not in classes:
            return resolve_class_name_sets(classes)
        classes = [entry for entry in classes.split(',') if entry.strip()]
        if not classes:
            raise ValueError('no class names given: e.g. "cat,sky"')
    entries = []
    for entry in classes:
        if isinstance(entry, str):
            names = [n.strip() for n in entry.split(SYNONYM_SEPARATOR)]
        else:
            names = [str(n).strip() for n in entry]
        entries.append(names[0] if len(names) == 1 else names)
    return resolve_class_name_sets(entries)


def default_method(arch: ClipArch) -> str:
    """NACLIP on a CLIP ViT, MaskCLIP on a ResNet (the successors change a
    ViT's last block)."""
    return DEFAULT_METHOD if arch.is_vit else 'maskclip'


def class_labels(names: ClassNames, limit: int = 2) -> List[str]:
    """Each class's label for legends: its first ``limit`` names."""
    return [names.label(k, limit) for k in range(names.num_classes)]


def dataset_meta_of(model) -> dict:
    """What ``SegLocalVisualizer`` needs of ``model``: its ``dataset_meta``
    where set (``training_free_model``; ``init_model`` with a checkpoint
    that records it), else the class names of its ``MaskClipHead`` with
    distinct colours (``init_model`` of a MaskCLIP or training-free config
    without a checkpoint leaves ``dataset_meta`` unset)."""
    meta = getattr(model, 'dataset_meta', None) or {}
    if meta.get('classes') and meta.get('palette'):
        return dict(classes=meta['classes'], palette=meta['palette'])
    sets = getattr(getattr(model, 'decode_head', None), 'class_name_sets',
                   None)
    if sets is None:
        raise ValueError(
            f'{type(model).__name__} has no dataset_meta and its decode head '
            f'no class names: set model.dataset_meta = dict(classes=..., '
            f'palette=...)')
    labels = class_labels(sets)
    return dict(classes=tuple(labels), palette=make_palette(len(labels)))


def training_free_model(clip: str,
                        classes: ClassesSpec,
                        method: Optional[str] = None,
                        device: Union[str, torch.device] = 'cpu',
                        *,
                        pamr: Union[bool, dict] = False,
                        prob_thd: float = 0.,
                        logit_scale: Optional[float] = None,
                        inference: Optional[str] = None,
                        scale: Optional[Tuple[int, int]] = None,
                        templates: Optional[str] = None,
                        ks_thresh: float = 0.,
                        pd_thresh: float = 0.,
                        text_heads: Optional[int] = None,
                        vision_heads: Optional[int] = None,
                        text_cache_dir: Optional[str] = None,
                        palette: Optional[Sequence[Sequence[int]]] = None,
                        vfm: Optional[str] = None,
                        verbose: bool = False):
    """A ``TrainingFreeSegmentor`` of ``method`` on ``clip`` for
    ``classes``, in eval mode on ``device``, its CLIP weights read and the
    class names encoded (a bad name or file fails here, before any image).

    The model carries what mmseg's API reads: ``model.cfg.test_pipeline``
    (the method's resize, or ``scale``) for ``inference_model``, and
    ``model.dataset_meta`` (``classes``: each class's label, ``palette``)
    for ``SegLocalVisualizer``. ``model.cfg.model`` is the segmentor's
    config, ``model.cfg.method`` the method.

    Args:
        clip: an OpenAI CLIP file or model name (:func:`resolve_clip`).
        classes: class names, synonyms included (:func:`parse_classes`).
        method: ``'maskclip'``, ``'sclip'``, ``'clearclip'``, ``'naclip'``,
            ``'scclip'`` or ``'proxyclip'``; None: :func:`default_method`
            of the CLIP.
        pamr: refine with PAMR (True: NACLIP's settings, or a config dict).
        prob_thd: pixels whose top class probability is below it take class
            0 (a background entry first); 0: off.
        logit_scale, templates, inference: None for the method's.
        scale: ``(long, short)``: images fit in it, ratio kept (default:
            2048 x the method's short side).
        ks_thresh, pd_thresh: MaskCLIP's key smoothing and prompt
            denoising (0: off).
        text_heads, vision_heads: head counts for a state-dict file whose
            heads are not ``width // 64`` (a TorchScript file records its
            own).
        text_cache_dir: where text embeddings are cached.
        palette: an RGB colour per class (default: distinct hues).
        vfm: ProxyCLIP's vision foundation model, a file or a name
            (``'dino_vitb8'``, looked up in ``pretrained/``).
        verbose: also show the warnings mmseg gives on every build of its
            heads (hidden by default, as the tools hide them).
    """
    clip_file = resolve_clip(clip)
    names = parse_classes(classes)
    if method is None:
        method = default_method(read_clip_arch(
            clip_file, vision_heads, text_heads,
            ('vision_heads', 'text_heads')))
    settings = method_settings(method)
    model_cfg = maskclip_model_cfg(
        clip_file, names, method=method, ks_thresh=ks_thresh,
        pd_thresh=pd_thresh, templates=templates, logit_scale=logit_scale,
        prob_thd=prob_thd, pamr=pamr, inference=inference,
        text_encoder=({'transformer_heads': text_heads}
                      if text_heads else None),
        text_cache_dir=text_cache_dir, vision_heads=vision_heads, vfm=vfm)
    pipeline = method_test_pipeline(
        method, scale[1] if scale else settings['short_side'])
    if scale:
        pipeline[1]['scale'] = tuple(scale)
    labels = class_labels(names)
    if palette is None:
        palette = make_palette(len(labels))
    elif len(palette) != len(labels):
        raise ValueError(f'palette has {len(palette)} colours for '
                         f'{len(labels)} classes')
    register_all_modules(init_default_scope=True)
    with quiet_warnings(verbose):
        model = MODELS.build(model_cfg)
    model.cfg = Config(dict(model=model_cfg, test_pipeline=pipeline,
                            method=method, default_scope='mmseg'))
    model.dataset_meta = dict(classes=tuple(labels),
                              palette=[list(c) for c in palette])
    model = model.to(device).eval()
    model.backbone.init_weights()
    if getattr(model, 'vfm', None) is not None:
        model.vfm.init_weights()
    model.decode_head.load_weights()
    return model
