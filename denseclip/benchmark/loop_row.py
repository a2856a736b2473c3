"""The test-loop row (``tools/benchmark.py --modes loop``): img/s of a whole
test run, data loading included.

A folder of synthetic ADE20K-sized JPEG images with label PNGs is written in
ADE20K's layout (``images/validation``, ``annotations/validation``); the
config's test dataloader reads it with ``--workers`` processes and batches of
``--batch``, and each timed iteration is one pass over the folder as
``tools/test.py`` runs it: loading and the test pipeline in the workers,
``model.test_step`` per group of images of one size
(:func:`~denseclip.engine.size_groups.run_in_size_groups`, as
``SizeGroupedTestLoop``), the config's evaluator on every batch and its
metrics at the end.

The loader's workers are persistent: the warm-up pass starts them, and the
timed passes find them running (with ``--warmup 0`` the first timed pass
pays for starting them, and the row says so). Every pass still begins with
its workers idle, as a test run does: the first batch waits for its images
to be loaded, once per pass (over a folder of N images, a share of about
``batch / N`` of the pass when loading keeps up with the model).
"""
import os
import os.path as osp
import shutil
import tempfile
import weakref
from typing import Any, Dict, Sequence, Tuple

import cv2
import numpy as np
import torch

from .settings import BenchmarkSettings
from .subjects import Subject

# (h, w) of the written images, in turn: ADE20K validation images are
# mostly 512x683 and 683x512, with others among them; after the ADE20K
# configs' test resize (short side 512) 384x512 and 600x800 become 512x683
ADE_VAL_SIZES: Tuple[Tuple[int, int], ...] = (
    (512, 683), (683, 512), (512, 683), (512, 512), (512, 683), (384, 512),
    (683, 512), (600, 800))
IMG_DIR = 'images/validation'
ANN_DIR = 'annotations/validation'


def write_ade_folder(root: str, num_images: int, num_classes: int,
                     sizes: Sequence[Tuple[int, int]] = ADE_VAL_SIZES,
                     seed: int = 0) -> None:
    """``num_images`` JPEG images (``sizes`` in turn; smooth colour fields
    with grain, not noise, which JPEG would decode slower than photos) and
    label PNGs of blocky regions of ``0..num_classes - 1`` under ``root`` in
    ADE20K's layout (``ADE_val_00000001.jpg`` ...)."""
    rng = np.random.default_rng(seed)
    for folder in (IMG_DIR, ANN_DIR):
        os.makedirs(osp.join(root, folder), exist_ok=True)
    for i in range(num_images):
        h, w = sizes[i % len(sizes)]
        small = rng.uniform(0, 255, size=(h // 32 + 2, w // 32 + 2, 3))
        img = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
        img = np.clip(img + rng.normal(0, 8, size=(h, w, 3)), 0, 255)
        regions = rng.integers(0, num_classes, size=(h // 64 + 1, w // 64 + 1))
        label = cv2.resize(regions.astype(np.uint8), (w, h),
                           interpolation=cv2.INTER_NEAREST)
        name = f'ADE_val_{i + 1:08d}'
        if not (cv2.imwrite(osp.join(root, IMG_DIR, name + '.jpg'),
                            img.astype(np.uint8),
                            [cv2.IMWRITE_JPEG_QUALITY, 90])
                and cv2.imwrite(osp.join(root, ANN_DIR, name + '.png'),
                                label)):
            raise OSError(f'could not write the loop row\'s images under '
                          f'{root}')


def loop_dataloader_cfg(cfg, root: str, batch_size: int,
                        workers: int) -> Dict[str, Any]:
    """The config's test dataloader, reading ``root`` (ADE20K's layout) in
    order with ``workers`` persistent workers and batches of
    ``batch_size``; its pipeline, collate function and dataset type as
    configured."""
    loader = cfg.test_dataloader.copy()
    dataset = loader.dataset.copy()
    if 'dataset' in dataset or 'datasets' in dataset:
        raise SystemExit(
            f'--modes loop: test_dataloader.dataset is a {dataset.type} of '
            'other datasets; the loop row needs a dataset that reads a '
            'folder (ADE20KDataset, BaseSegDataset ...)')
    dataset.pop('ann_file', None)
    dataset.pop('indices', None)
    dataset.update(data_root=root, img_suffix='.jpg', seg_map_suffix='.png',
                   data_prefix=dict(img_path=IMG_DIR, seg_map_path=ANN_DIR))
    loader.update(dataset=dataset, batch_size=batch_size,
                  num_workers=workers, persistent_workers=workers > 0,
                  sampler=dict(type='DefaultSampler', shuffle=False))
    return loader


def loop_row(subject: Subject, settings: BenchmarkSettings,
             device: torch.device) -> dict:
    """The test-loop row of ``subject``: one timed iteration is a pass over
    ``settings.loop_images`` synthetic ADE20K-sized images (see the
    module's docstring). The row's ``close`` stops the loader's workers and
    removes the images."""
    from mmengine.evaluator import Evaluator
    from mmengine.runner import Runner
    from mmengine.utils.dl_utils import set_multi_processing

    from denseclip.engine.size_groups import run_in_size_groups
    model, cfg = subject.model, subject.cfg
    n, batch, workers = settings.loop_images, settings.batch, settings.workers
    # as mmengine's Runner sets up a run (fork, OpenCV single-threaded)
    set_multi_processing(**cfg.get('env_cfg', {}).get('mp_cfg', {}),
                         distributed=False)
    root = tempfile.mkdtemp(prefix='denseclip_loop_')
    try:
        write_ade_folder(root, n, model.num_classes)
        loader_cfg = loop_dataloader_cfg(cfg, root, batch, workers)
        try:
            loader = Runner.build_dataloader(loader_cfg, seed=0)
        except Exception as err:
            raise SystemExit(
                f'--modes loop: {subject.config}\'s test dataset '
                f'({loader_cfg["dataset"]["type"]}) cannot read ADE20K\'s '
                f'layout ({IMG_DIR}, {ANN_DIR}, .jpg / .png) that the loop '
                f'row writes: {type(err).__name__}: {err}') from err
        if len(loader.dataset) != n:
            raise SystemExit(
                f'--modes loop: {subject.config}\'s test dataset listed '
                f'{len(loader.dataset)} of the {n} images written')
        evaluator = Evaluator(cfg.test_evaluator)
        evaluator.dataset_meta = loader.dataset.metainfo
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    # also gone if the run stops before close() (the loader dropped)
    weakref.finalize(loader, shutil.rmtree, root, True)
    model.eval()
    label = (f'test loop ({workers} worker{"s" if workers != 1 else ""}, '
             f'batch {batch}: load, preprocess, model, metric'
             + (', workers cold' if settings.warmup < 1 else '') + ')')
    row = dict(model=subject.name, mode='loop', label=label,
               input=f'{n} ADE jpgs', images=n, text_cache=None,
               reference=False, test_step_calls=None)

    def step():
        calls = 0
        with torch.no_grad():
            for data_batch in loader:
                outputs, k = run_in_size_groups(model.test_step, data_batch)
                calls += k
                evaluator.process(data_samples=outputs, data_batch=data_batch)
        evaluator.evaluate(len(loader.dataset))
        if row['test_step_calls'] is None:
            row['test_step_calls'] = calls
            row['label'] = label[:-1] + f'; {calls} test_step calls)'

    def close():
        iterator = getattr(loader, '_iterator', None)
        if iterator is not None and hasattr(iterator, '_shutdown_workers'):
            iterator._shutdown_workers()  # persistent workers
        shutil.rmtree(root, ignore_errors=True)

    row.update(step=step, close=close)
    return row
