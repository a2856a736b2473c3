"""Speed and peak memory of segmentors (``tools/benchmark.py``; docs/performance.md)."""
from .memory import PeakMemory, held_bytes
from .report import print_table, ratios
from .run import benchmark_device
from .settings import (ALL_MODES, LOOP_MODE, MODES, TEXT_CACHE_CHOICES,
                       BenchmarkSettings)
from .subjects import MethodsConfigError, check_methods_config

__all__ = ['ALL_MODES', 'BenchmarkSettings', 'LOOP_MODE', 'MODES',
           'MethodsConfigError', 'PeakMemory', 'TEXT_CACHE_CHOICES',
           'benchmark_device', 'check_methods_config', 'held_bytes',
           'print_table', 'ratios']
