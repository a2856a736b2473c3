from ...clip import ClassNames, CLIPTextTower, tokenize  # here before issue 18
from .clip_text_context_encoder import CLIPTextContextEncoder
from .context_decoder import ContextDecoder

__all__ = ['CLIPTextTower', 'CLIPTextContextEncoder', 'ClassNames',
           'ContextDecoder', 'tokenize']
