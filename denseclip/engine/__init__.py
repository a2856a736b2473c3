from .atomic_checkpoint_hook import AtomicCheckpointHook
from .checkpoint_files import (CheckpointFileError, check_checkpoint_file,
                               find_resumable_checkpoint)
from .checkpoint_fit import (CheckpointFitError, CheckpointFitHook,
                             checkpoint_fit)
from .class_names_hook import ClassNamesHook
from .cpu_distributed import (CPUDistributedDataParallel,
                              end_cpu_distributed_run, setup_distributed)
from .data_checks import add_data_checks
from .data_files_check_hook import CheckDataFilesHook
from .dataloader_workers import (dataloader_workers_shut_down,
                                 shut_down_dataloader_workers)
from .empty_splits import EmptySplitError, check_splits_have_samples
from .merged_groups_optim_constructor import \
    MergedGroupsOptimWrapperConstructor
from .mixed_precision_optim_wrapper import MixedPrecisionOptimWrapper
from .random_state_hook import RandomStateHook
from .run_setup import setup_test_run, setup_train_run
from .size_grouped_test_loop import (SizeGroupedTestLoop,
                                    use_size_grouped_test_loop)
from .size_grouped_val_loop import SizeGroupedValLoop
from .size_groups import run_in_size_groups, split_by_image_size
from .tool_runner import build_runner
from .visualization_hook import (StandaloneSegVisualizationHook,
                                 use_standalone_visualization)

__all__ = [
    'AtomicCheckpointHook', 'CPUDistributedDataParallel', 'CheckDataFilesHook',
    'CheckpointFileError', 'CheckpointFitError', 'CheckpointFitHook',
    'ClassNamesHook', 'EmptySplitError', 'StandaloneSegVisualizationHook',
    'build_runner', 'check_splits_have_samples',
    'dataloader_workers_shut_down',
    'checkpoint_fit', 'end_cpu_distributed_run',
    'MergedGroupsOptimWrapperConstructor', 'MixedPrecisionOptimWrapper',
    'RandomStateHook', 'SizeGroupedTestLoop', 'SizeGroupedValLoop',
    'add_data_checks', 'check_checkpoint_file',
    'find_resumable_checkpoint', 'run_in_size_groups', 'setup_distributed',
    'setup_test_run', 'setup_train_run', 'shut_down_dataloader_workers',
    'split_by_image_size', 'use_size_grouped_test_loop',
    'use_standalone_visualization'
]
