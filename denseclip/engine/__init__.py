from .class_names_hook import ClassNamesHook

__all__ = ['ClassNamesHook']

# issue 9: checkpoints that survive a kill, resume, CPU distributed runs,
# data checks
from .atomic_checkpoint_hook import AtomicCheckpointHook  # noqa: E402
from .checkpoint_files import (CheckpointFileError,  # noqa: E402
                               check_checkpoint_file,
                               find_resumable_checkpoint)
from .cpu_distributed import (CPUDistributedDataParallel,  # noqa: E402
                              setup_distributed)
from .data_checks import add_data_checks  # noqa: E402
from .data_files_check_hook import CheckDataFilesHook  # noqa: E402
from .random_state_hook import RandomStateHook  # noqa: E402
from .run_setup import setup_test_run, setup_train_run  # noqa: E402

__all__ += [
    'AtomicCheckpointHook', 'CPUDistributedDataParallel', 'CheckDataFilesHook',
    'CheckpointFileError', 'RandomStateHook', 'add_data_checks',
    'check_checkpoint_file', 'find_resumable_checkpoint', 'setup_distributed',
    'setup_test_run', 'setup_train_run'
]
