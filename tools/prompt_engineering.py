"""Write MaskCLIP's class text embeddings for a class set, in the reference's format.

    python tools/prompt_engineering.py CLIP --class-set voc20 [--out FILE]
        [--templates imagenet85|single|...] [--no-prompt-eng]

CLIP is an OpenAI CLIP file or model name (``pretrained/ViT-B-16.pt``,
``ViT-B/16``). ``--class-set`` takes one or more of: a dataset name
(``voc20``, ``pascal_context59``, ``coco_stuff164k``, ``ade``,
``cityscapes``, any ``mmseg.utils.get_classes`` name) or a ``.txt`` file with
one class name per line; several sets are concatenated, duplicates dropped
(as the reference does). The output is what the reference's
``tools/maskclip_utils/prompt_engineering.py`` writes and ``MaskClipHead``'s
``text_embeddings_path`` reads: one float tensor ``[K, C]`` saved with
``torch.save``, each row the L2-normalised ensemble over the templates.

MaskCLIP configs do not need this file (they compute and cache the embeddings
at start-up from ``clip_pretrained``); it is for sharing embeddings, for the
reference's configs, and for machines without the CLIP file.
"""
import argparse
import os
import os.path as osp
import sys

import torch

import denseclip  # noqa: F401  (registers the modules)
from denseclip.clip.files import find_clip_file
from denseclip.clip.prompt_class_names import resolve_class_names
from denseclip.clip.prompt_templates import get_templates
from denseclip.clip.zero_shot import clip_text_embeddings


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Write zero-shot class text embeddings [K, C] (MaskCLIP)')
    parser.add_argument('clip', help='OpenAI CLIP file or model name')
    parser.add_argument(
        '--class-set', nargs='+', required=True,
        help='dataset name(s) or .txt file(s) with one class name per line')
    parser.add_argument(
        '--templates', default='imagenet85',
        help="template set: 'imagenet85' (the paper's 85), 'single', "
        "'imagenet' (CLIP's 80), 'vild'")
    parser.add_argument(
        '--no-prompt-eng', action='store_true',
        help="one prompt, 'a photo of a {}.' (same as --templates single)")
    parser.add_argument('--out', help='output file (default: pretrained/'
                        '<class sets>_<CLIP name>_clip_text.pth)')
    parser.add_argument('--text-heads', type=int,
                        help='attention heads of the text tower, for a state '
                        'dict of a model whose heads are not width // 64 (a '
                        'TorchScript file records its own; another count is '
                        'an error)')
    parser.add_argument('--no-cache', action='store_true',
                        help='do not read or write the embedding cache')
    parser.add_argument('--device', default='cpu')
    return parser.parse_args(argv)


def main(argv=None) -> str:
    args = parse_args(argv)
    try:
        clip_file = find_clip_file(args.clip)
        names = []
        for spec in args.class_set:
            names += resolve_class_names(spec)
        names = list(dict.fromkeys(names))  # drop repeats, keep order
        templates = get_templates('single' if args.no_prompt_eng else
                                  args.templates)
    except (FileNotFoundError, ValueError) as err:
        sys.exit(f'prompt_engineering: {err}')
    out = args.out
    if out is None:
        sets = '_'.join(
            osp.splitext(osp.basename(s))[0] for s in args.class_set)
        stem = osp.splitext(osp.basename(clip_file))[0]
        out = osp.join('pretrained', f'{sets}_{stem}_clip_text.pth')
        if len(templates) == 1:
            out = out.replace('_clip_text.pth', '_npe_clip_text.pth')
    print(f'{len(names)} class(es), {len(templates)} template(s)')
    overrides = ({'transformer_heads': args.text_heads}
                 if args.text_heads else None)
    embeddings = clip_text_embeddings(
        clip_file, names, templates, overrides, cache=not args.no_cache,
        device=torch.device(args.device))
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    torch.save(embeddings.float().cpu(), out)
    print(f'wrote {out}: {tuple(embeddings.shape)}')
    return out


if __name__ == '__main__':
    main()
