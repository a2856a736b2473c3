from .denseclip import DenseCLIP

__all__ = ['DenseCLIP']
