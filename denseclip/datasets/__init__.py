from .mark_unlabeled import UNLABELED_INDEX, MarkUnlabeled

__all__ = ['MarkUnlabeled', 'UNLABELED_INDEX']
