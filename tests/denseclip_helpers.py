"""Helpers for the DenseCLIP config / tool tests (importable, no fixtures here)."""
import glob
import importlib.util
import os.path as osp
import subprocess
import sys
from types import ModuleType
from typing import Dict, List, Optional

import torch

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG_DIR = osp.join(REPO, 'configs')
TOY_CONFIG = osp.join(CONFIG_DIR, 'toy', 'denseclip_toy.py')

# The configs of the "DenseCLIP end to end" issue: the papers' six models,
# the released-ViT variant and the toy.
PAPER_CONFIGS = [
    'denseclip_fpn_r50_ade.py', 'denseclip_fpn_r101_ade.py',
    'denseclip_fpn_vit-b_ade_640.py', 'denseclip_fpn_vit-b_ade_640_released.py',
    'fpn_clip_r50_ade.py', 'fpn_clip_r101_ade.py', 'fpn_clip_vit-b_ade_640.py'
]
# DenseCLIP's other variants: pre-model prompting, any backbone.
VARIANT_CONFIGS = [
    'denseclip_fpn_r50-pre_ade.py', 'denseclip_fpn_imagenet-r50_ade.py'
]
DENSECLIP_CONFIGS = [
    osp.join(CONFIG_DIR, c) for c in PAPER_CONFIGS + VARIANT_CONFIGS
] + [TOY_CONFIG]


def load_tool(name: str) -> ModuleType:
    """Import ``tools/<name>.py`` as a module (``tools`` is no package)."""
    path = osp.join(REPO, 'tools', f'{name}.py')
    spec = importlib.util.spec_from_file_location(f'_tool_{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_script(args: List[str], timeout: int = 240) -> subprocess.CompletedProcess:
    """Run a Python script in a fresh interpreter from the repository root;
    stdout and stderr together in ``.stdout``."""
    return subprocess.run([sys.executable] + args, cwd=REPO, timeout=timeout,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)


def newest_metrics(work_dir: str) -> Optional[Dict]:
    """The metrics json of the newest run under ``work_dir``."""
    import json
    files = sorted(glob.glob(osp.join(work_dir, '*', '*.json')),
                   key=osp.getmtime)
    if not files:
        return None
    with open(files[-1]) as f:
        return json.load(f)


def make_samples(n: int, h: int, w: int, num_classes: int = 4,
                 seed: int = 0):
    """``n`` SegDataSamples with random labels and ``h x w`` metainfo."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    gen = torch.Generator().manual_seed(seed)
    samples = []
    for _ in range(n):
        sample = SegDataSample(gt_sem_seg=PixelData(data=torch.randint(
            0, num_classes, (1, h, w), generator=gen)))
        sample.set_metainfo(dict(img_shape=(h, w), ori_shape=(h, w),
                                 pad_shape=(h, w), padding_size=[0, 0, 0, 0]))
        samples.append(sample)
    return samples


# ------------------------------------------------ released checkpoints
def context_decoder_shapes(width: int, visual_dim: int,
                           layers: int) -> Dict[str, tuple]:
    """ContextDecoder keys and shapes exactly as DESIGN.md lists them."""
    w, v = width, visual_dim
    shapes = {
        'memory_proj.0.weight': (v, ), 'memory_proj.0.bias': (v, ),
        'memory_proj.1.weight': (w, v), 'memory_proj.1.bias': (w, ),
        'memory_proj.2.weight': (w, ), 'memory_proj.2.bias': (w, ),
        'text_proj.0.weight': (v, ), 'text_proj.0.bias': (v, ),
        'text_proj.1.weight': (w, v), 'text_proj.1.bias': (w, ),
        'out_proj.0.weight': (w, ), 'out_proj.0.bias': (w, ),
        'out_proj.1.weight': (v, w), 'out_proj.1.bias': (v, )
    }
    for i in range(layers):
        p = f'decoder.{i}.'
        for attn in ('self_attn', 'cross_attn'):
            for proj in ('q_proj', 'k_proj', 'v_proj'):
                shapes[f'{p}{attn}.{proj}.weight'] = (w, w)
            shapes[f'{p}{attn}.proj.weight'] = (w, w)
            shapes[f'{p}{attn}.proj.bias'] = (w, )
        for n in (1, 2, 3):
            shapes[f'{p}norm{n}.weight'] = (w, )
            shapes[f'{p}norm{n}.bias'] = (w, )
        shapes.update({
            f'{p}mlp.0.weight': (4 * w, w), f'{p}mlp.0.bias': (4 * w, ),
            f'{p}mlp.3.weight': (w, 4 * w), f'{p}mlp.3.bias': (w, )
        })
    return shapes


def released_state_dict(model_cfg, clip_state: Dict[str, torch.Tensor],
                        seed: int = 0) -> Dict[str, torch.Tensor]:
    """A segmentor-level state dict in the reference DenseCLIP's layout.

    Built without our DenseCLIP module: the towers from an OpenAI CLIP state
    dict (``visual.*`` -> ``backbone.*``; text keys -> ``text_encoder.*``,
    positional embedding cut to the text context length), the context
    decoder from DESIGN.md's key list, neck and head from mmseg's own FPN /
    FPNHead, plus ``contexts`` and ``gamma``. SyncBN heads are built as BN
    (same keys).
    """
    from mmseg.models.decode_heads import FPNHead
    from mmseg.models.necks import FPN
    gen = torch.Generator().manual_seed(seed)
    text_cfg = model_cfg['text_encoder']
    state = {}
    for key, value in clip_state.items():
        if key.startswith('visual.'):
            state['backbone.' + key[len('visual.'):]] = value.clone()
        elif key.startswith(('transformer.', 'token_embedding.', 'ln_final.',
                             'text_projection', 'positional_embedding')):
            if key == 'positional_embedding':
                value = value[:text_cfg['context_length']]
            state['text_encoder.' + key] = value.clone()
    dec = model_cfg['context_decoder']
    for key, shape in context_decoder_shapes(
            dec['transformer_width'], dec['visual_dim'],
            dec['transformer_layers']).items():
        state['context_decoder.' + key] = torch.randn(shape, generator=gen)
    neck = {k: v for k, v in model_cfg['neck'].items() if k != 'type'}
    head = {k: v for k, v in model_cfg['decode_head'].items() if k != 'type'}
    head['norm_cfg'] = dict(type='BN', requires_grad=True)
    # FPN and FPNHead initialise from torch's global generator: seeded here,
    # or the head (and so the predictions) would depend on which tests ran
    # before this one
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        state.update({f'neck.{k}': v
                      for k, v in FPN(**neck).state_dict().items()})
        state.update({f'decode_head.{k}': v
                      for k, v in FPNHead(**head).state_dict().items()})
    num_contexts = text_cfg['context_length'] - model_cfg['context_length']
    state['contexts'] = torch.randn(1, num_contexts,
                                    text_cfg['transformer_width'],
                                    generator=gen)
    state['gamma'] = torch.full((model_cfg['text_dim'], ), 1e-4)
    return state


def mmseg0x_checkpoint(state: Dict[str, torch.Tensor], classes, palette,
                       path: str) -> str:
    """Save ``state`` as mmseg 0.x / mmcv 1.x did: ``{'meta', 'state_dict',
    'optimizer'}``, with the meta and AdamW state such a file holds."""
    params = list(state)
    optimizer = {
        'state': {
            i: {'step': torch.tensor(80000.), 'exp_avg': torch.zeros(1),
                'exp_avg_sq': torch.zeros(1)}
            for i in range(2)
        },
        'param_groups': [{
            'lr': 1e-6, 'betas': (0.9, 0.999), 'eps': 1e-08,
            'weight_decay': 1e-4, 'amsgrad': False, 'initial_lr': 1e-4,
            'params': [0, 1]
        }]
    }
    meta = dict(env_info='sys.platform: linux', seed=0,
                exp_name='denseclip_fpn_res50_512x512_80k.py',
                mmseg_version='0.20.2+', config='model = dict(...)',
                CLASSES=tuple(classes), PALETTE=[list(p) for p in palette],
                epoch=1, iter=80000, mmcv_version='1.3.17',
                time='Sun Jan 30 10:00:00 2022',
                hook_msgs=dict(last_ckpt='work_dirs/iter_80000.pth'),
                num_params=len(params))
    torch.save({'meta': meta, 'state_dict': state, 'optimizer': optimizer},
               path)
    return path
