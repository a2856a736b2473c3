from .aspp_v2_head import ASPPV2Head
from .identity_head import IdentityHead
from .maskclip_head import MaskClipHead
from .maskclip_plus_head import MaskClipPlusHead

__all__ = ['ASPPV2Head', 'IdentityHead', 'MaskClipHead', 'MaskClipPlusHead']
