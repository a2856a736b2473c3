"""The models under test: built from a config with random weights."""
from typing import Optional, Sequence, Tuple

import torch
from mmengine.config import Config
from torch import nn

from .memory import held_bytes


def build_random_model(config: str, cfg_options: Optional[dict],
                       device: torch.device) -> Tuple[Config, nn.Module]:
    """The config and its model with random weights on ``device``.

    No CLIP file or checkpoint is read (``pretrained`` is dropped) and SyncBN
    becomes BN; a DenseCLIP config that takes its class names from the
    dataset gets placeholder names of the head's class count.
    """
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    import denseclip  # noqa: F401  (registers the modules)
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model_cfg = cfg.model.copy()
    model_cfg.pretrained = None
    for tower in ('backbone', 'text_encoder'):
        if tower in model_cfg and 'pretrained' in model_cfg[tower]:
            model_cfg[tower].pretrained = None
    if model_cfg.type == 'DenseCLIP' and model_cfg.get('class_names') is None:
        model_cfg.class_names = [
            f'class {i}' for i in range(model_cfg.decode_head.num_classes)
        ]
    head = model_cfg.get('decode_head', {})
    if head.get('type') == 'MaskClipHead':  # no CLIP or reference files
        model_cfg.backbone.require_clip_weights = False
        head.update(clip_pretrained=None, text_embeddings_path=None,
                    visual_projs_path=None)
    vfm = model_cfg.get('vfm')
    if vfm and vfm.get('pretrained'):  # ProxyCLIP: the VFM's shape, no file
        from denseclip.vfm import read_vfm_arch
        vfm.update(read_vfm_arch(vfm.pretrained)._asdict(), pretrained=None)
    model = revert_sync_batchnorm(MODELS.build(model_cfg))
    model.init_weights()
    if getattr(model, 'vfm', None) is not None:
        # its random weights as a whole state dict: the guard against
        # running without weights is for users, not for timing
        model.vfm.load_state_dict(model.vfm.state_dict())
    if hasattr(model.decode_head, 'text_source'):
        head = model.decode_head
        head.projections_source = head.text_source = 'random (benchmark)'
    return cfg, model.to(device)


# what ``--methods`` turns into each method: a MaskCLIP model on a CLIP ViT
METHODS_MODEL = dict(type=('EncoderDecoder', 'TrainingFreeSegmentor'),
                     backbone=('CLIPVisionTransformer', ),
                     decode_head=('MaskClipHead', ))
METHODS_EXAMPLE = 'configs/maskclip/maskclip_vit16_512x512_voc12aug_20.py'
# the VFM of --methods proxyclip (its shape from the table; random weights)
PROXY_VFM = 'dino_vitb8'


class MethodsConfigError(ValueError):
    """``--methods`` on a config that is not a MaskCLIP ViT config."""


def check_methods_config(config: str, cfg_options: Optional[dict] = None,
                         methods: Sequence[str] = ()) -> None:
    """Raise :class:`MethodsConfigError`, naming the config and what it
    holds, unless ``config`` (with ``cfg_options``) is a MaskCLIP ViT
    config, the only kind the training-free ``methods`` can be made of
    (their last block replaces a CLIP ViT's, their scores are
    ``MaskClipHead``'s)."""
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    model = cfg.get('model') or {}
    found = dict(type=model.get('type'),
                 backbone=(model.get('backbone') or {}).get('type'),
                 decode_head=(model.get('decode_head') or {}).get('type'))
    wrong = [key for key, allowed in METHODS_MODEL.items()
             if found[key] not in allowed]
    if wrong:
        holds = ', '.join(f'model.{k}={v!r}' if k == 'type' else
                          f'model.{k}.type={v!r}' for k, v in found.items())
        wanted = ', '.join(f'model.{k}' + ('' if k == 'type' else '.type') +
                           ' ' + ' or '.join(allowed)
                           for k, allowed in METHODS_MODEL.items())
        raise MethodsConfigError(
            f'--methods {" ".join(methods)}: {config} is not a MaskCLIP ViT '
            f'config ({holds}); the training-free methods are made from one '
            f'({wanted}): give one as CONFIG, e.g. {METHODS_EXAMPLE}')


def method_options(method: str, crop: int = 224,
                   stride: int = 112) -> dict:
    """``--cfg-options`` that turn a MaskCLIP ViT config into ``method``
    (its last block and position interpolation, ``maskclip_model_cfg``'s
    ``METHODS``) on a ``TrainingFreeSegmentor`` with batched slide windows
    of ``crop`` every ``stride`` (the same windows for every method)."""
    from denseclip.apis import VFM_METHODS, method_settings
    settings = method_settings(method)
    options = {
        'model.type': 'TrainingFreeSegmentor',
        'model.backbone.dense_last_block': settings['last_block'],
        'model.backbone.pos_interpolation': settings['pos_interpolation'],
        'model.test_cfg': dict(mode='slide', crop_size=(crop, crop),
                               stride=(stride, stride)),
    }
    if method in VFM_METHODS:  # ProxyCLIP's paper VFM, DINO ViT-B/8
        options['model.vfm'] = dict(type='VisionFoundationModel',
                                    pretrained=PROXY_VFM)
    return options


class Subject:
    """One model under test ('model' or 'baseline'): its config, and what it
    holds in memory (weights, buffers and, once built, optimizer state)."""

    def __init__(self, name: str, config: str, cfg: Config, model: nn.Module):
        self.name = name
        self.config = config
        self.cfg = cfg
        self.model = model
        self.optim = None
        self.is_denseclip = hasattr(model, 'text_features')

    def held(self) -> int:
        return held_bytes(self.model, self.optim)
