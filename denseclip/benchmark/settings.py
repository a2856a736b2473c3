"""What one benchmark run measures (``tools/benchmark.py``'s options)."""
from dataclasses import dataclass
from typing import Optional, Sequence

MODES = ('whole', 'slide', 'train')
# not run by default: writes images and starts loader workers
LOOP_MODE = 'loop'
ALL_MODES = MODES + (LOOP_MODE, )
TEXT_CACHE_CHOICES = ('on', 'off', 'both')


@dataclass
class BenchmarkSettings:
    """The configs to measure and how (see ``docs/performance.md``).

    ``text_cache``: DenseCLIP inference with the cached text features
    (``'on'``), as the reference runs it (``'off'``), or both rows.
    ``compile``: a ``torch.compile`` mode for inference, or None.
    ``methods``: training-free methods measured on ``config`` (a MaskCLIP
    ViT config), one subject each, instead of ``config`` and ``baseline``.
    ``profile``: after timing, run each row this many more steps under
    ``torch.profiler`` and print where the time goes (0: off);
    ``profile_dir``: write each row's Chrome trace there.
    ``loop_images``, ``workers``: the test-loop row's folder of synthetic
    ADE20K-sized images and its loader's worker processes (its batches:
    ``batch``).
    """
    config: str
    baseline: Optional[str] = None
    cfg_options: Optional[dict] = None
    size: int = 512
    modes: Sequence[str] = MODES
    text_cache: str = 'both'
    amp: bool = False
    compile: Optional[str] = None
    channels_last: bool = False
    iters: int = 3
    warmup: int = 1
    batch: int = 1
    train_batch: int = 2
    methods: Optional[Sequence[str]] = None
    profile: int = 0
    profile_dir: Optional[str] = None
    loop_images: int = 64
    workers: int = 4
