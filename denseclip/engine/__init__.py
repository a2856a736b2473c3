from .class_names_hook import ClassNamesHook
from .merged_groups_optim_constructor import \
    MergedGroupsOptimWrapperConstructor
from .mixed_precision_optim_wrapper import MixedPrecisionOptimWrapper

__all__ = [
    'ClassNamesHook', 'MergedGroupsOptimWrapperConstructor',
    'MixedPrecisionOptimWrapper'
]
