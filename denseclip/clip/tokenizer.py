"""Tokenizing class names with mmseg's CLIP BPE tokenizer, without silent truncation."""
from typing import Sequence

import torch
from mmseg.utils import tokenize as mmseg_tokenize
from mmseg.utils.tokenizer import _tokenizer


def tokenize(texts: Sequence[str], context_length: int,
             truncate: bool = False) -> torch.LongTensor:
    """Tokenize ``texts`` into ``[len(texts), context_length]`` CLIP tokens.

    Each row is ``[sot, tokens..., eot, 0...]``. A text that needs more than
    ``context_length`` tokens (its BPE tokens plus start and end) is an error
    naming it, unless ``truncate`` is set: then it is cut and still ends with
    the end-of-text token, as CLIP does.
    """
    if isinstance(texts, str):
        texts = [texts]
    if not truncate:
        for text in texts:
            needed = len(_tokenizer.encode(text)) + 2
            if needed > context_length:
                raise ValueError(
                    f'class name {text!r} needs {needed} tokens (with start '
                    f'and end of text) but the context length is '
                    f'{context_length}; shorten the name, raise the context '
                    f'length, or allow truncation')
    return mmseg_tokenize(list(texts), context_length=context_length)
