from .maskclip_model import maskclip_model_cfg

__all__ = ['maskclip_model_cfg']
