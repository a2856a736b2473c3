from .identity_head import IdentityHead

__all__ = ['IdentityHead']
