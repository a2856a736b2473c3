"""Zero-shot text embeddings by prompt ensembling: each name's prompts
encoded, L2-normalised, averaged over the templates and normalised again
(CLIP's recipe). One embedding per name: a class with synonyms has several."""
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from mmseg.registry import MODELS
from mmseg.utils.tokenizer import _tokenizer
from torch import Tensor, nn

from .arch import clip_file_text_cfg
from .checkpoint import CLIPCheckpointError, load_clip_tower
from .class_names import ClassNames
from .prompt_templates import TemplatesSpec, get_templates
from .text_cache import TextEmbeddingCache
from .tokenizer import tokenize


def encode_prompts(tower: nn.Module, class_names: Sequence[str],
                   templates: Sequence[str], batch_size: int = 256) -> Tensor:
    """Ensembled, L2-normalised text embeddings ``[len(class_names), C]``.

    Memory stays bounded for any number of classes: the prompts of a few
    classes at a time (about ``batch_size`` prompts) are tokenized, encoded
    and averaged per class at once; only the ``[K, C]`` result is kept
    (1,000 names x 85 templates would otherwise hold 85,000 features). With
    more than one chunk, progress is logged about every tenth of the work.

    Prompts are tokenized to the longest prompt's length (per chunk) rather
    than CLIP's 77 positions: the text tower's attention is causal and its
    feature is read at the end-of-text token, so the positions after it
    change nothing; the shorter sequences make encoding several times faster.
    """
    class_names, templates = list(class_names), list(templates)
    limit = tower.context_length
    device = next(tower.parameters()).device
    per_chunk = max(1, batch_size // max(len(templates), 1))
    starts = range(0, len(class_names), per_chunk)
    report = {min(len(starts), round(len(starts) * i / 10)) for i in
              range(1, 11)} if len(starts) > 1 else set()
    rows = []
    with torch.no_grad():
        for n, start in enumerate(starts, 1):
            names = class_names[start:start + per_chunk]
            prompts = [t.format(name) for name in names for t in templates]
            lengths = [len(_tokenizer.encode(p)) + 2 for p in prompts]
            length = max(lengths)
            if length > limit:
                longest = prompts[lengths.index(length)]
                raise ValueError(
                    f'the prompt {longest!r} needs {length} tokens (with '
                    f'start and end of text) but the CLIP text tower has '
                    f'{limit} positions; shorten the class name')
            tokens = tokenize(prompts, length)
            feats = torch.cat([
                F.normalize(tower(chunk.to(device)).float(), dim=-1)
                for chunk in tokens.split(batch_size)
            ])
            feats = feats.view(len(names), len(templates), -1).mean(dim=1)
            rows.append(F.normalize(feats, dim=-1))
            if n in report:
                done = min(start + per_chunk, len(class_names))
                print_log(f'encoded {done}/{len(class_names)} class names '
                          f'({done * len(templates)} prompts)',
                          logger='current')
    return torch.cat(rows)


def build_clip_text_tower(clip_file: str,
                          overrides: Optional[dict] = None) -> nn.Module:
    """CLIP's text tower with the weights of ``clip_file``, in eval mode
    (its heads: the file's where it records them, see
    :func:`~denseclip.clip.arch.clip_file_text_cfg`)."""
    tower = MODELS.build(clip_file_text_cfg(clip_file, overrides))
    load_clip_tower(tower, clip_file, 'text')
    return tower.eval()


def clip_text_embeddings(clip_file: str,
                         class_names: Union[ClassNames, Sequence[str]],
                         templates: TemplatesSpec = 'imagenet85',
                         text_cfg: Optional[dict] = None,
                         cache: bool = True,
                         cache_dir: Optional[str] = None,
                         device: Optional[torch.device] = None) -> Tensor:
    """Zero-shot text embeddings ``[Q, C]`` of the names from a CLIP file,
    one per query (``ClassNames.queries``; a plain list: one per class).

    Computed once per (CLIP file content, class names, templates, text tower
    config) and then read from :class:`TextEmbeddingCache` (``cache=False``
    skips it).

    Args:
        clip_file: an OpenAI CLIP file (TorchScript archive or state dict).
        class_names: the names in label order (:class:`ClassNames` for
            synonyms).
        templates: a template set name or list (:func:`get_templates`).
        text_cfg: overrides of the text tower config read from the file
            (e.g. ``transformer_heads`` for a state dict of a model whose
            heads are not ``width // 64``; a TorchScript file records its
            own, and another count is an error).
        cache, cache_dir: use the on-disk cache, and where it lives.
        device: where to run the text tower (default CPU).
    """
    templates = get_templates(templates)
    queries = (class_names.queries if isinstance(class_names, ClassNames)
               else list(class_names))
    cfg = clip_file_text_cfg(clip_file, text_cfg)
    store = TextEmbeddingCache(cache_dir) if cache else None
    if store is not None:
        inputs = store.inputs(clip_file, class_names, templates, cfg)
        cached = store.load(inputs)
        if cached is not None:
            return cached
    tower = build_clip_text_tower(clip_file, text_cfg)
    if device is not None:
        tower = tower.to(device)
    print_log(
        f'encoding {len(queries)} class name(s) x {len(templates)} '
        f'template(s) with the text tower of {clip_file}', logger='current')
    embeddings = encode_prompts(tower, queries, templates).cpu()
    if embeddings.shape[1] != cfg['embed_dim']:
        raise CLIPCheckpointError(
            f'{clip_file}: text embeddings of width {embeddings.shape[1]}, '
            f'expected {cfg["embed_dim"]}')
    if store is not None:
        store.save(inputs, embeddings)
    return embeddings
