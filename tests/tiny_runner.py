"""A tiny mmseg model, dataset and runner config for engine tests (no fixtures).

``ResNetV1c`` (8 channels, one stage) + ``FCNHead`` on 32x32 random images;
trains a few iterations with mmengine's Runner in about a second. And
:func:`mmengine_log`, to read what mmengine's logger printed.
"""
import contextlib
import logging
import os
import os.path as osp
from typing import Iterator, List

import cv2
import numpy as np
from mmengine.config import Config
from mmengine.logging import MMLogger

CLASSES = ('background', 'thing')


def write_dataset(root: str, num: int = 4) -> None:
    """``img_dir/{train,val}`` and ``ann_dir/{train,val}``, ``num`` PNGs each."""
    rng = np.random.RandomState(0)
    for split in ('train', 'val'):
        os.makedirs(osp.join(root, 'img_dir', split))
        os.makedirs(osp.join(root, 'ann_dir', split))
        for i in range(num):
            img = rng.randint(0, 256, (32, 32, 3), dtype=np.uint8)
            label = (img[..., 0] > 127).astype(np.uint8)
            cv2.imwrite(osp.join(root, 'img_dir', split, f'{i}.png'), img)
            cv2.imwrite(osp.join(root, 'ann_dir', split, f'{i}.png'), label)


def runner_cfg(data_root, work_dir, name, max_iters=4, train_pipeline=None,
               dropout_ratio=0.1, **overrides) -> Config:
    """A Runner config: checkpoints (save_best mIoU) and validation every 2
    iterations, poly lr, seed 0; ``overrides`` replace top-level keys."""
    norm_cfg = dict(type='BN', requires_grad=True)
    pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
                dict(type='PackSegInputs')]

    def loader(split, sampler, steps=pipeline):
        return dict(
            batch_size=2, num_workers=0, sampler=sampler,
            dataset=dict(
                type='BaseSegDataset', data_root=data_root,
                metainfo=dict(classes=CLASSES,
                              palette=[[0, 0, 0], [255, 255, 255]]),
                data_prefix=dict(img_path=f'img_dir/{split}',
                                 seg_map_path=f'ann_dir/{split}'),
                img_suffix='.png', seg_map_suffix='.png', pipeline=steps))

    cfg = dict(
        default_scope='mmseg',
        work_dir=work_dir,
        experiment_name=name,
        model=dict(
            type='EncoderDecoder',
            data_preprocessor=dict(
                type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53],
                std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_val=0,
                seg_pad_val=255, size=(32, 32)),
            backbone=dict(
                type='ResNetV1c', depth=18, num_stages=1, strides=(1, ),
                dilations=(1, ), out_indices=(0, ), stem_channels=8,
                base_channels=8, norm_cfg=norm_cfg),
            decode_head=dict(
                type='FCNHead', in_channels=8, in_index=0, channels=8,
                num_convs=1, concat_input=False, num_classes=len(CLASSES),
                dropout_ratio=dropout_ratio, norm_cfg=norm_cfg,
                align_corners=False,
                loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False,
                                 loss_weight=1.0)),
            train_cfg=dict(),
            test_cfg=dict(mode='whole')),
        train_dataloader=loader(
            'train', dict(type='InfiniteSampler', shuffle=True),
            train_pipeline or pipeline),
        val_dataloader=loader('val', dict(type='DefaultSampler',
                                          shuffle=False)),
        test_dataloader=loader('val', dict(type='DefaultSampler',
                                           shuffle=False)),
        val_evaluator=dict(type='IoUMetric', iou_metrics=['mIoU']),
        test_evaluator=dict(type='IoUMetric', iou_metrics=['mIoU']),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=max_iters,
                       val_interval=2),
        val_cfg=dict(type='ValLoop'),
        test_cfg=dict(type='TestLoop'),
        optim_wrapper=dict(
            type='OptimWrapper',
            optimizer=dict(type='SGD', lr=0.01, momentum=0.9,
                           weight_decay=0.0005)),
        param_scheduler=[dict(type='PolyLR', eta_min=1e-4, power=0.9,
                              begin=0, end=max_iters, by_epoch=False)],
        # mmseg's default_runtime hooks; save_best adds the float32
        # best_score to message_hub.runtime_info
        default_hooks=dict(
            timer=dict(type='IterTimerHook'),
            logger=dict(type='LoggerHook', interval=1,
                        log_metric_by_epoch=False),
            param_scheduler=dict(type='ParamSchedulerHook'),
            checkpoint=dict(type='CheckpointHook', by_epoch=False,
                            interval=2, save_best='mIoU'),
            sampler_seed=dict(type='DistSamplerSeedHook'),
            visualization=dict(type='SegVisualizationHook')),
        env_cfg=dict(cudnn_benchmark=False,
                     mp_cfg=dict(mp_start_method='fork',
                                 opencv_num_threads=0),
                     dist_cfg=dict(backend='gloo')),
        visualizer=dict(type='SegLocalVisualizer',
                        vis_backends=[dict(type='LocalVisBackend')]),
        log_processor=dict(by_epoch=False),
        log_level='WARNING',
        randomness=dict(seed=0),
        launcher='none',
        load_from=None,
        resume=False)
    cfg.update(overrides)
    return Config(cfg)


@contextlib.contextmanager
def mmengine_log() -> Iterator[List[str]]:
    """Collect the messages mmengine's current logger prints (it does not
    propagate to the root logger that pytest's caplog watches)."""
    records: List[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
