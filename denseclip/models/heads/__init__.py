from .identity_head import IdentityHead
from .maskclip_head import MaskClipHead

__all__ = ['IdentityHead', 'MaskClipHead']
