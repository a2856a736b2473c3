from .class_names import ClassNames
from .clip_text_context_encoder import CLIPTextContextEncoder
from .clip_text_encoder import CLIPTextTower
from .context_decoder import ContextDecoder
from .tokenize import tokenize

__all__ = ['CLIPTextTower', 'CLIPTextContextEncoder', 'ClassNames',
           'ContextDecoder', 'tokenize']
