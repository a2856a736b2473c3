"""One benchmark run on one device: build the subjects, measure every mode."""
import gc
import os
import os.path as osp
import platform
from typing import List, Optional, Tuple

import torch

from ..engine.matmul_precision import matmul_tf32, matmul_tf32_setting
from .loop_row import loop_row
from .memory import PeakMemory
from .profile import print_profile, profile_step, summarize
from .settings import BenchmarkSettings
from .steps import inference_rows, train_row
from .subjects import (Subject, build_random_model, check_methods_config,
                       method_options)
from .timing import measure


def load_average() -> Optional[float]:
    """The 1-minute load average (other jobs competing for the cores)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return None


def profile_rows(rows: List[dict], subjects: List[Subject],
                 settings: BenchmarkSettings, device: torch.device) -> None:
    """``settings.profile`` more steps of each row under the profiler: the
    summary printed and kept in ``row['profile']``."""
    models = {s.name: s.model for s in subjects}
    for i, row in enumerate(rows):
        trace = None
        if settings.profile_dir:
            name = f'{row["model"]}_{row["mode"]}_{i}_{device.type}'
            trace = osp.join(settings.profile_dir,
                             name.replace(' ', '_') + '.json.gz')
        prof = profile_step(row['step'], settings.profile, device,
                            model=models[row['model']], trace=trace)
        row['profile'] = summarize(prof, settings.profile)
        print_profile(f'{row["model"]}: {row["label"]} ({device.type})',
                      row['profile'])


def benchmark_device(settings: BenchmarkSettings, device: torch.device,
                     display_root: Optional[str] = None
                     ) -> Tuple[List[dict], List[dict]]:
    """Measure every mode of ``settings`` on ``device``: (model infos, rows).

    The model and the baseline (if any) are measured in the same run, their
    rows of a mode in turn. Configs under ``display_root`` are reported
    relative to it.
    """
    memory = PeakMemory(device)
    load_before = load_average()
    subjects = []
    if settings.methods:
        check_methods_config(settings.config, settings.cfg_options,
                             settings.methods)
        plan = [(method, settings.config,
                 dict(settings.cfg_options or {}, **method_options(method)))
                for method in settings.methods]
    else:
        plan = [('model', settings.config, settings.cfg_options),
                ('baseline', settings.baseline, None)]
    for name, config, options in plan:
        if config is None:
            continue
        cfg, model = build_random_model(config, options, device)
        subject = Subject(name, config, cfg, model)
        if settings.compile or settings.amp or settings.channels_last:
            from denseclip.engine.compiled_inference import \
                compile_for_inference
            compile_for_inference(model, mode=settings.compile,
                                  amp=settings.amp,
                                  channels_last=settings.channels_last)
        subjects.append(subject)

    def others_held(row):
        return sum(s.held() for s in subjects if s.name != row['model'])

    rows = []
    # the first config's env_cfg.matmul_tf32 for every row of the run (one
    # process-wide switch), as tools/train.py and tools/test.py set it
    tf32 = matmul_tf32_setting(subjects[0].cfg) if subjects else None
    with matmul_tf32(tf32):
        tf32_on = torch.backends.cuda.matmul.allow_tf32
        for mode in settings.modes:
            mode_rows = []
            for subject in subjects:
                if mode == 'train':
                    mode_rows.append(train_row(subject, settings, device))
                elif mode == 'loop':
                    mode_rows.append(loop_row(subject, settings, device))
                else:
                    mode_rows += inference_rows(subject, mode, settings,
                                                device)
            measure(mode_rows, settings.iters, settings.warmup, memory,
                    others_held)
            if settings.profile:
                profile_rows(mode_rows, subjects, settings, device)
            for row in mode_rows:  # the loop rows' loader workers and images
                row.pop('close', lambda: None)()
            rows += mode_rows
    for row in rows:
        del row['step']
    device_name = (torch.cuda.get_device_name(device) if device.type == 'cuda'
                   else platform.processor() or platform.machine())
    infos = []
    for subject in subjects:
        config = osp.abspath(subject.config)
        if display_root and config.startswith(
                osp.abspath(display_root) + os.sep):
            config = osp.relpath(config, display_root)
        model = subject.model
        infos.append(dict(
            name=subject.name, config=config, model=type(model).__name__,
            params_m=sum(p.numel() for p in model.parameters()) / 1e6,
            num_classes=model.num_classes, device=str(device),
            device_name=device_name, threads=torch.get_num_threads(),
            torch=torch.__version__,
            cuda=torch.version.cuda if device.type == 'cuda' else None,
            peak_resettable=memory.resettable,
            load_average=(load_before, load_average()), amp=settings.amp,
            matmul_tf32=tf32_on if device.type == 'cuda' else None,
            compile=settings.compile, channels_last=settings.channels_last))
    subjects.clear()  # the models go before the next run builds its own
    gc.collect()
    return infos, rows
