"""Convert an OpenAI CLIP file into the files MaskCLIP configs can load.

    # the reference's visual-projection file (MaskClipHead.visual_projs_path)
    python tools/convert_clip_weights.py CLIP [--out FILE]

    # a whole MaskCLIP checkpoint for a config (tools/test.py CONFIG CHECKPOINT)
    python tools/convert_clip_weights.py CLIP --config CONFIG --out FILE.pth

CLIP is an OpenAI CLIP file or model name (``pretrained/RN50.pt``, ``RN50``).

The projection file is what the reference's ``convert_clip_weights.py``
writes for the head: a dict of projection name -> ``{'weight', 'bias'}``
(``[out, in]`` matrices, float32): ``q_proj``, ``k_proj``, ``v_proj``,
``c_proj`` of the attention pool for a ResNet, ``proj`` (``visual.proj``
transposed, no bias) for a ViT. The reference also stores its re-keyed
backbone under ``'clip'``; its head never reads it and our backbones load the
OpenAI file directly, so it is left out.

The whole checkpoint (``--config``) is the config's model with every weight
filled from the CLIP file (backbone, projections, text embeddings of the
config's class names), saved as ``{'meta', 'state_dict'}``: ``tools/test.py``
needs a checkpoint, and with this one a test run reads no CLIP file and
encodes no text.
"""
import argparse
import os
import os.path as osp
import sys

import torch
from mmengine.config import Config, DictAction
from mmseg.registry import MODELS
from mmseg.utils import register_all_modules

import denseclip  # noqa: F401  (registers the modules)
from denseclip.clip.checkpoint import load_clip_checkpoint
from denseclip.models.heads.maskclip_projections import projections_from_clip
from denseclip.clip.files import find_clip_file
from denseclip.clip.text_cache import file_identity


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='OpenAI CLIP file -> MaskCLIP projection file or '
        'whole MaskCLIP checkpoint')
    parser.add_argument('clip', help='OpenAI CLIP file or model name')
    parser.add_argument('--out', help='output file (default: pretrained/'
                        '<CLIP name>_clip_weights.pth)')
    parser.add_argument(
        '--config', help='write a whole checkpoint of this MaskCLIP config '
        'instead of the projection file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='key=value overrides of the config')
    return parser.parse_args(argv)


def write_projections(clip_file: str, out: str) -> str:
    projs = projections_from_clip(load_clip_checkpoint(clip_file), clip_file)
    projs = {
        name: {k: v.float().contiguous()
               for k, v in entry.items()}
        for name, entry in projs.items()
    }
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    torch.save(projs, out)
    shapes = ', '.join(f'{n} {tuple(e["weight"].shape)}'
                       for n, e in projs.items())
    print(f'wrote {out}: {shapes}')
    return out


def write_checkpoint(clip_file: str, config: str, out: str,
                     cfg_options: dict = None) -> str:
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    register_all_modules(init_default_scope=True)
    model_cfg = cfg.model
    if model_cfg.decode_head.get('type') != 'MaskClipHead':
        raise ValueError(f'{config} is not a MaskCLIP config (its decode head '
                         f'is {model_cfg.decode_head.get("type")})')
    model_cfg.backbone.pretrained = clip_file
    model_cfg.decode_head.clip_pretrained = clip_file
    model_cfg.decode_head.text_embeddings_path = None
    model_cfg.decode_head.visual_projs_path = None
    model = MODELS.build(model_cfg)
    model.init_weights()  # reads the file into backbone and head
    head = model.decode_head
    head.load_weights(require=True)
    meta = dict(
        maskclip=dict(
            clip_file=osp.basename(clip_file),
            clip_sha256=file_identity(clip_file),
            class_names=head.class_names,
            templates=len(head.templates),
            config=osp.basename(config)))
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    torch.save(dict(meta=meta, state_dict=model.state_dict()), out)
    print(f'wrote {out}: MaskCLIP of {config} with the weights of '
          f'{clip_file}')
    return out


def main(argv=None) -> str:
    args = parse_args(argv)
    try:
        clip_file = find_clip_file(args.clip)
    except FileNotFoundError as err:
        sys.exit(f'convert_clip_weights: {err}')
    stem = osp.splitext(osp.basename(clip_file))[0]
    if args.config:
        out = args.out or osp.join(
            'work_dirs', f'{osp.splitext(osp.basename(args.config))[0]}.pth')
        return write_checkpoint(clip_file, args.config, out, args.cfg_options)
    out = args.out or osp.join('pretrained', f'{stem}_clip_weights.pth')
    return write_projections(clip_file, out)


if __name__ == '__main__':
    main()
