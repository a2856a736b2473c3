"""SizeGroupedTestLoop / SizeGroupedValLoop and the split they share: a
loader batch of images of several sizes runs as groups of one size, the
outputs in the loader's order; mmseg's EncoderDecoder gives the same
predictions and metrics as with batch size 1."""
import itertools

import pytest
import torch
from mixed_size_data import Recorder, assert_same_predictions
from mmengine.config import Config, ConfigDict
from mmengine.runner import Runner
from mmseg.structures import SegDataSample
from tiny_runner import mmengine_log, runner_cfg

from denseclip.engine import (SizeGroupedTestLoop, run_in_size_groups,
                              split_by_image_size, use_size_grouped_test_loop)
from denseclip.toy.data import TOY_CLASSES, TOY_PALETTE

A, B, C = (3, 8, 10), (3, 10, 8), (3, 6, 6)
RUNS = itertools.count()  # a name per runner: mmengine keys loggers by it
PATTERN = [A, B, A, A, C, B, A]


def plain_batch(shapes):
    """A batch as pseudo_collate makes it; sample i's image is filled with i."""
    return dict(inputs=[torch.full(s, float(i)) for i, s in enumerate(shapes)],
                data_samples=[SegDataSample(metainfo=dict(index=i))
                              for i in range(len(shapes))])


def test_split_groups_by_size_in_order_of_first_appearance():
    batch = plain_batch(PATTERN)
    groups = split_by_image_size(batch)
    assert [idx for idx, _ in groups] == [[0, 2, 3, 6], [1, 5], [4]]
    for indices, sub in groups:
        assert [int(t[0, 0, 0]) for t in sub['inputs']] == indices
        assert [s.index for s in sub['data_samples']] == indices
        # the samples themselves, not copies: the model fills them in
        assert all(s is batch['data_samples'][i]
                   for s, i in zip(sub['data_samples'], indices))


def test_a_batch_of_one_size_or_stacked_is_not_split():
    assert split_by_image_size(plain_batch([A, A, A])) is None
    assert split_by_image_size(plain_batch([C])) is None
    stacked = dict(inputs=torch.zeros(2, *A), data_samples=[None, None])
    assert split_by_image_size(stacked) is None
    assert split_by_image_size([torch.zeros(A)]) is None  # not a dict


def test_tta_batches_are_grouped_by_the_sizes_of_all_views():
    """TestTimeAug batches: inputs[view][i]. Samples 0 and 1 match in their
    first view only, so they go apart; 0 and 2 match in both."""
    views = [[A, A, A], [B, C, B]]
    batch = dict(
        inputs=[[torch.full(s, float(i)) for i, s in enumerate(view)]
                for view in views],
        data_samples=[[SegDataSample(metainfo=dict(index=i, view=v))
                       for i in range(3)] for v in range(2)])
    groups = split_by_image_size(batch)
    assert [idx for idx, _ in groups] == [[0, 2], [1]]
    sub = groups[0][1]
    assert len(sub['inputs']) == 2 and len(sub['data_samples']) == 2
    for v in range(2):
        assert [s.index for s in sub['data_samples'][v]] == [0, 2]
        assert all(s.view == v for s in sub['data_samples'][v])
        assert [int(t[0, 0, 0]) for t in sub['inputs'][v]] == [0, 2]


def test_outputs_come_back_in_the_loaders_order():
    calls = []

    def step(batch):
        calls.append([s.index for s in batch['data_samples']])
        assert len({t.shape for t in batch['inputs']}) == 1
        return [f'out {s.index}' for s in batch['data_samples']]

    outputs, n = run_in_size_groups(step, plain_batch(PATTERN))
    assert outputs == [f'out {i}' for i in range(len(PATTERN))]
    assert calls == [[0, 2, 3, 6], [1, 5], [4]] and n == 3
    # one size: one call with the batch as it came
    batch = plain_batch([A, A])
    outputs, n = run_in_size_groups(lambda b: list(b['data_samples']), batch)
    assert n == 1 and outputs == batch['data_samples']


def test_collect_strips_each_groups_extra_output():
    """mmengine's loops strip a trailing loss element from each call."""
    outputs, n = run_in_size_groups(
        lambda b: [s.index for s in b['data_samples']] + ['loss'],
        plain_batch([A, B, A]), collect=lambda out: out[:-1])
    assert outputs == [0, 1, 2] and n == 2


def test_a_step_that_drops_samples_is_named():
    with pytest.raises(RuntimeError, match='returned 1 outputs for a group '
                       'of 2 samples'):
        run_in_size_groups(lambda b: b['data_samples'][:1],
                           plain_batch([A, B, A]))


def test_a_field_without_one_entry_per_sample_is_named():
    batch = dict(plain_batch([A, B]), extra=[1, 2, 3])
    with pytest.raises(TypeError, match=r"data_batch\['extra'\] should be a "
                       'list of 2 entries'):
        split_by_image_size(batch)


@pytest.mark.parametrize('loop', [dict(type='TestLoop'),
                                  dict(type='mmengine.TestLoop'), {}, None,
                                  dict(type='TestLoop', fp16=True)])
def test_a_plain_test_loop_is_switched(loop):
    cfg = Config(dict(test_dataloader=dict(batch_size=4), test_cfg=loop))
    assert use_size_grouped_test_loop(cfg)
    assert cfg.test_cfg == dict(loop or {}, type='SizeGroupedTestLoop')
    assert not use_size_grouped_test_loop(cfg)  # already


def test_another_loop_is_kept_with_a_warning():
    cfg = Config(dict(test_dataloader=dict(batch_size=4),
                      test_cfg=dict(type='MyTestLoop')))
    with mmengine_log() as log:
        assert not use_size_grouped_test_loop(cfg)
    assert cfg.test_cfg.type == 'MyTestLoop'
    assert any("test_cfg.type='MyTestLoop' is kept" in line for line in log)


# ------------------------------------------- mmseg's EncoderDecoder, runner
def ade_runner_cfg(root, work_dir, batch_size, **overrides) -> Config:
    """tiny_runner's ResNetV1c + FCNHead (mmseg's own EncoderDecoder) on the
    mixed-size toy split in ADE20K's layout, images at their own sizes; no
    training set."""
    overrides = dict(dict(train_dataloader=None, train_cfg=None,
                          optim_wrapper=None, param_scheduler=None),
                     **overrides)
    cfg = runner_cfg(root, str(work_dir), f'grouped_{next(RUNS)}',
                     **overrides)
    for hook in ('checkpoint', 'param_scheduler'):  # training hooks
        cfg.default_hooks.pop(hook)
    cfg.model.decode_head.num_classes = len(TOY_CLASSES)
    for name in ('val_dataloader', 'test_dataloader'):
        loader = cfg[name]
        loader.batch_size = batch_size
        loader.dataset.update(
            metainfo=dict(classes=TOY_CLASSES, palette=TOY_PALETTE),
            data_prefix=dict(img_path='images/validation',
                             seg_map_path='annotations/validation'),
            img_suffix='.jpg', reduce_zero_label=True)
    return cfg


@pytest.fixture(scope='module')
def tiny_weights(mixed_root, tmp_path_factory):
    """One set of random weights for every run (seeded, BN statistics not
    the identity, so that batch statistics would show)."""
    from mmseg.registry import MODELS
    torch.manual_seed(0)
    cfg = ade_runner_cfg(mixed_root, tmp_path_factory.mktemp('w'), 1)
    model = MODELS.build(cfg.model)
    model.init_weights()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2)
    path = str(tmp_path_factory.mktemp('ckpt') / 'tiny.pth')
    torch.save({'state_dict': model.state_dict()}, path)
    return path


def run(cfg, mode):
    runner = Runner.from_cfg(cfg)
    return runner, (runner.test() if mode == 'test' else runner.val())


@pytest.mark.parametrize('mode', ['test', 'val'])
def test_encoder_decoder_batches_equal_batch_size_1(
        mixed_root, tiny_weights, tmp_path, monkeypatch, mode):
    recorder = Recorder(monkeypatch)
    loops = dict(test_cfg=dict(type='SizeGroupedTestLoop'),
                 val_cfg=dict(type='SizeGroupedValLoop'))
    results = {}
    for batch_size in (1, 3):
        cfg = ade_runner_cfg(mixed_root, tmp_path / str(batch_size),
                             batch_size, load_from=tiny_weights, **loops)
        runner, metrics = run(cfg, mode)
        results[batch_size] = metrics, recorder.take()
    loop = runner.test_loop if mode == 'test' else runner.val_loop
    assert type(loop).__name__ == loops[f'{mode}_cfg']['type']
    assert len(loop.dataloader) == 3  # [A B A] [A C B] [A]
    assert results[1][0] == results[3][0]
    assert_same_predictions(results[1][1], results[3][1])
    assert [n for n, *_ in results[3][1]] == [
        f'ADE_val_{i:08d}.jpg' for i in range(1, 8)]


def test_the_test_loop_counts_groups(mixed_root, tiny_weights, tmp_path):
    cfg = ade_runner_cfg(mixed_root, tmp_path, 3, load_from=tiny_weights,
                         test_cfg=dict(type='SizeGroupedTestLoop'),
                         log_level='INFO')
    runner = Runner.from_cfg(cfg)
    with mmengine_log() as log:
        runner.test()
    assert isinstance(runner.test_loop, SizeGroupedTestLoop)
    assert (runner.test_loop.images, runner.test_loop.model_calls) == (7, 6)
    assert any('7 images in 3 loader batches of up to 3, 6 test_step calls'
               in line for line in log)


def test_mmengines_test_loop_refuses_these_batches(mixed_root, tiny_weights,
                                                   tmp_path):
    """Why the loop exists: the stock TestLoop hands the mixed batch to
    mmseg's data preprocessor, which refuses it."""
    cfg = ade_runner_cfg(mixed_root, tmp_path, 3, load_from=tiny_weights,
                         test_cfg=dict(type='TestLoop'))
    with pytest.raises(AssertionError, match='image size in a batch should '
                       'be the same'):
        Runner.from_cfg(cfg).test()


def test_maskclip_plus_groups_equal_one_image_at_a_time(rn_clip, tmp_path):
    """MaskCLIP+ (a DeepLabv2 student with a MaskCLIP teacher): test_step on
    a mixed batch through the groups gives each image's own prediction."""
    from maskclip_helpers import NAMES, toy_maskclip_cfg
    from mmseg.registry import MODELS
    text_dim = rn_clip.shape['embed_dim']
    model = MODELS.build(ConfigDict(
        type='MaskClipPlus',
        data_preprocessor=dict(type='SegDataPreProcessor',
                               mean=[123.675, 116.28, 103.53],
                               std=[58.395, 57.12, 57.375], bgr_to_rgb=True),
        backbone=dict(type='ResNetV1c', depth=18, stem_channels=8,
                      base_channels=8, norm_cfg=dict(type='BN')),
        decode_head=dict(
            type='MaskClipPlusHead',
            decode_module=dict(type='ASPPV2Head', dilations=(1, 2)),
            in_channels=64, in_index=3, channels=text_dim,
            text_channels=text_dim, num_classes=len(NAMES),
            dropout_ratio=0.),
        teacher=toy_maskclip_cfg(rn_clip, cache_dir=str(tmp_path)),
        train_cfg=dict(), test_cfg=dict(mode='whole')))
    model.init_weights()
    model.eval()
    gen = torch.Generator().manual_seed(0)
    shapes = [(3, 48, 64), (3, 64, 40), (3, 48, 64)]
    images = [torch.randint(0, 256, s, generator=gen, dtype=torch.uint8)
              for s in shapes]

    def batch(indices):
        samples = []
        for i in indices:
            h, w = shapes[i][1:]
            samples.append(SegDataSample(metainfo=dict(
                img_path=f'{i}.jpg', img_shape=(h, w), ori_shape=(h, w),
                padding_size=[0, 0, 0, 0])))
        return dict(inputs=[images[i] for i in indices],
                    data_samples=samples)

    with torch.no_grad():
        grouped, calls = run_in_size_groups(model.test_step, batch([0, 1, 2]))
        alone = [model.test_step(batch([i]))[0] for i in range(3)]
    assert calls == 2
    for g, a in zip(grouped, alone):
        assert g.img_path == a.img_path
        assert torch.equal(g.pred_sem_seg.data, a.pred_sem_seg.data)
        torch.testing.assert_close(g.seg_logits.data, a.seg_logits.data,
                                   atol=1e-5, rtol=1e-5)
    assert len(torch.cat([a.pred_sem_seg.data.flatten()
                          for a in alone]).unique()) > 1


def test_originals_of_other_sizes_in_a_group_are_not_warned_about(
        mixed_root, tmp_path):
    """Two originals resized to one input size: mmseg warns "Image shapes
    are different in the batch." (each prediction is still resized to its
    own original); the groups do not print it, and nothing else is muted."""
    from mmengine.logging import print_log
    from mmseg.registry import MODELS
    cfg = ade_runner_cfg(mixed_root, tmp_path, 2)
    model = MODELS.build(cfg.model).eval()
    originals = [(60, 75), (120, 150)]
    batch = dict(
        inputs=[torch.zeros(3, 120, 150, dtype=torch.uint8)] * 2,
        data_samples=[SegDataSample(metainfo=dict(
            img_shape=(120, 150), ori_shape=o, padding_size=[0, 0, 0, 0]))
            for o in originals])

    def step(data):
        print_log('another warning', logger='current', level=30)
        return model.test_step(data)

    with torch.no_grad(), mmengine_log() as plain:
        model.test_step(batch)
    with torch.no_grad(), mmengine_log() as grouped:
        outputs, _ = run_in_size_groups(step, batch)
    assert 'Image shapes are different in the batch.' in plain
    assert grouped == ['another warning']
    assert [tuple(o.pred_sem_seg.shape) for o in outputs] == originals
