"""The models under test: built from a config with random weights."""
from typing import Optional, Tuple

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
    model = revert_sync_batchnorm(MODELS.build(model_cfg))
    model.init_weights()
    return cfg, model.to(device)


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
