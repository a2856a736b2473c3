from .class_names_hook import ClassNamesHook
from .merged_groups_optim_constructor import \
    MergedGroupsOptimWrapperConstructor

__all__ = ['ClassNamesHook', 'MergedGroupsOptimWrapperConstructor']
