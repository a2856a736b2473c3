"""Load time and peak memory of full-size CLIP files in each layout.

    python tools/clip_load_benchmark.py [--archs ViT-L-14 ViT-H-14]
                                        [--work-dir DIR] [--keep]

For each architecture, random weights at full size are written once per
layout this project reads: OpenAI's (a TorchScript archive, as OpenAI ships
ViT-L/14; a plain state dict for ViT-H/14, which OpenAI never released),
open_clip's (``open_clip_model.safetensors`` with ``open_clip_config.json``,
as the hub holds them) and transformers' (a ``CLIPModel`` folder saved by
``save_pretrained``). Each file is then loaded in a fresh process, as a config
does it (``read_clip_arch`` and both towers built and loaded through
``init_weights``), and the wall time and the process's peak resident memory
are printed as a Markdown table. Benchmarks, not tests: the files are GBs
(ViT-H/14: 3.7 GiB each) and are removed at the end unless ``--keep``.
"""
import argparse
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import tempfile
import time

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

# open_clip's src/open_clip/model_configs/<name>.json (mlfoundations/open_clip
# at 89fb801), in the names of denseclip.toy.clip_model.OpenAICLIP
SHAPES = {
    'ViT-L-14': dict(embed_dim=768, image_resolution=224, vision_layers=24,
                     vision_width=1024, vision_patch_size=14, vision_heads=16,
                     context_length=77, transformer_width=768,
                     transformer_heads=12, transformer_layers=12),
    'ViT-H-14': dict(embed_dim=1024, image_resolution=224, vision_layers=32,
                     vision_width=1280, vision_patch_size=14, vision_heads=16,
                     context_length=77, transformer_width=1024,
                     transformer_heads=16, transformer_layers=24),
}
# OpenAI shipped TorchScript archives of these only
OPENAI_RELEASED = {'ViT-L-14'}
# the activation of the weights users have in each shape: OpenAI's L/14 runs
# QuickGELU; the ViT-H/14 people use is LAION's, trained with GELU (its
# open_clip_config.json has no quick_gelu key)
ACTIVATION = {'ViT-L-14': 'quick_gelu', 'ViT-H-14': 'gelu'}

# peak RSS from /proc/self/status VmHWM: the process's own high-water mark
# (getrusage's ru_maxrss carries the parent's across fork and exec)
LOAD = r'''
import json, sys, time

def peak_gb():
    with open('/proc/self/status') as f:
        line = next(l for l in f if l.startswith('VmHWM:'))
    return int(line.split()[1]) / 2**20

start = time.perf_counter()
from mmseg.registry import MODELS
import denseclip  # noqa: F401
from denseclip.clip.arch import read_clip_arch
imported = time.perf_counter()
base = peak_gb()
path = sys.argv[1]
arch = read_clip_arch(path)
towers = [MODELS.build(dict(arch.visual, pretrained=path, out_indices=(),
                            get_embeddings=True)),
          MODELS.build(dict(arch.text, pretrained=path))]
for tower in towers:
    tower.init_weights()
done = time.perf_counter()
print(json.dumps(dict(
    load_s=done - imported, import_s=imported - start,
    peak_gb=peak_gb(),
    base_gb=base,
    activation=towers[1].load_report.activation,
    layout=towers[1].load_report.layout)))
'''


def log(message: str) -> None:
    print(f'[clip-load] {message}', flush=True)


def write_files(arch: str, folder: str) -> dict:
    """{layout: path} of random full-size weights of ``arch``."""
    import torch
    from safetensors.torch import save_file

    from denseclip.toy.clip_model import (build_openai_clip,
                                          write_clip_checkpoint)
    shape = SHAPES[arch]
    paths = {}
    tic = time.perf_counter()
    model = build_openai_clip(seed=0, **shape)
    log(f'{arch}: built {sum(p.numel() for p in model.parameters()) / 1e6:.1f}'
        f'M parameters in {time.perf_counter() - tic:.0f} s')
    if arch in OPENAI_RELEASED:
        paths['openai (TorchScript)'] = write_clip_checkpoint(
            model, osp.join(folder, f'{arch}.pt'))
    else:
        paths['openai (state dict)'] = write_clip_checkpoint(
            model, osp.join(folder, f'{arch}.pt'), torchscript=False)
    log(f'{arch}: OpenAI layout written')
    oc_dir = osp.join(folder, f'{arch}-open_clip')
    os.makedirs(oc_dir, exist_ok=True)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, osp.join(oc_dir, 'open_clip_model.safetensors'))
    model_cfg = {'embed_dim': shape['embed_dim']}
    if ACTIVATION[arch] == 'quick_gelu':
        model_cfg['quick_gelu'] = True
    with open(osp.join(oc_dir, 'open_clip_config.json'), 'w') as f:
        json.dump({'model_cfg': {
            **model_cfg,
            'vision_cfg': {'image_size': shape['image_resolution'],
                           'layers': shape['vision_layers'],
                           'width': shape['vision_width'],
                           'head_width': shape['vision_width'] //
                           shape['vision_heads'],
                           'patch_size': shape['vision_patch_size']},
            'text_cfg': {'context_length': 77, 'vocab_size': 49408,
                         'width': shape['transformer_width'],
                         'heads': shape['transformer_heads'],
                         'layers': shape['transformer_layers']}}}, f)
    paths['open_clip (safetensors)'] = oc_dir
    log(f'{arch}: open_clip layout written')
    del model, state
    import transformers
    config = transformers.CLIPConfig(
        text_config=dict(hidden_size=shape['transformer_width'],
                         intermediate_size=4 * shape['transformer_width'],
                         num_hidden_layers=shape['transformer_layers'],
                         num_attention_heads=shape['transformer_heads'],
                         hidden_act=ACTIVATION[arch]),
        vision_config=dict(hidden_size=shape['vision_width'],
                           intermediate_size=4 * shape['vision_width'],
                           num_hidden_layers=shape['vision_layers'],
                           num_attention_heads=shape['vision_heads'],
                           image_size=shape['image_resolution'],
                           patch_size=shape['vision_patch_size'],
                           hidden_act=ACTIVATION[arch]),
        projection_dim=shape['embed_dim'])
    torch.manual_seed(0)
    hf_dir = osp.join(folder, f'{arch}-hf')
    transformers.CLIPModel(config).save_pretrained(hf_dir)
    paths['transformers (safetensors)'] = hf_dir
    log(f'{arch}: transformers layout written')
    return paths


def size_gb(path: str) -> float:
    if osp.isfile(path):
        return osp.getsize(path) / 2**30
    return sum(osp.getsize(osp.join(path, f)) for f in os.listdir(path)
               if f.endswith(('.safetensors', '.bin'))) / 2**30


def main(argv=None) -> list:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--archs', nargs='+', default=list(SHAPES),
                        choices=list(SHAPES))
    parser.add_argument('--work-dir', help='where the files are written '
                        '(default: a temporary folder)')
    parser.add_argument('--keep', action='store_true',
                        help='keep the written files')
    args = parser.parse_args(argv)
    folder = args.work_dir or tempfile.mkdtemp(prefix='clip_load_')
    os.makedirs(folder, exist_ok=True)
    rows = []
    try:
        for arch in args.archs:
            for layout, path in write_files(arch, folder).items():
                out = subprocess.run([sys.executable, '-c', LOAD, path],
                                     capture_output=True, text=True,
                                     cwd=REPO)
                if out.returncode:
                    raise SystemExit(f'[clip-load] loading {path} failed:\n'
                                     f'{out.stderr[-3000:]}')
                result = json.loads(out.stdout.strip().splitlines()[-1])
                rows.append((arch, layout, size_gb(path), result))
                log(f'{arch} {layout}: {result["load_s"]:.1f} s, peak '
                    f'{result["peak_gb"]:.2f} GiB')
                if not args.keep:
                    shutil.rmtree(path) if osp.isdir(path) else \
                        os.remove(path)
    finally:
        if not args.keep and not args.work_dir:
            shutil.rmtree(folder, ignore_errors=True)
    print('\n| CLIP | layout | file GiB | load s | peak RSS GiB (after '
          'imports) | activation (load report) |')
    print('|---|---|---|---|---|---|')
    for arch, layout, gb, r in rows:
        print(f'| {arch} | {layout} | {gb:.2f} | {r["load_s"]:.1f} | '
              f'{r["peak_gb"]:.2f} ({r["base_gb"]:.2f}) | '
              f'{r["activation"]} |')
    return rows


if __name__ == '__main__':
    main()
