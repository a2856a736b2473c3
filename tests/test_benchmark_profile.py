"""tools/benchmark.py --profile (denseclip.benchmark.profile): the summary's
figures from a device profile's events, regions for forward and backward,
and a real CPU profile of a tiny DenseCLIP training step."""
import gzip
import json
from types import SimpleNamespace

import pytest
import torch
from denseclip_helpers import TOY_CONFIG, load_tool
from torch.autograd import DeviceType
from torch.autograd.profiler_util import Kernel

from denseclip.benchmark.profile import (REGION_PREFIX, model_regions,
                                         print_profile, summarize)


def _event(name, start=0., end=0., parent=None, kernels=(), seq=-1,
           self_us=0., device=DeviceType.CPU):
    return SimpleNamespace(
        name=name, time_range=SimpleNamespace(start=start, end=end),
        cpu_parent=parent, kernels=list(kernels), sequence_nr=seq,
        self_cpu_time_total=self_us, device_type=device)


def _fake_profile():
    """Two steps: a forward conv in the backbone region (seq 7), its
    backward node, a host sync, and three kernels with gaps of 5 and 75 us.
    """
    region = _event(REGION_PREFIX + 'backbone')
    conv = _event('aten::convolution', parent=region, seq=7, self_us=40.,
                  kernels=[Kernel('conv_kernel', 0, 10.)])
    node = _event('ConvolutionBackward0', seq=7)
    conv_bwd = _event('aten::convolution_backward', parent=node,
                      self_us=60., kernels=[Kernel('wgrad', 0, 10.),
                                            Kernel('dgrad', 0, 30.)])
    sync = _event('cudaStreamSynchronize', self_us=5.)
    cuda = DeviceType.CUDA
    kernels = [_event(REGION_PREFIX + 'backbone', 0., 130., device=cuda),
               _event('conv_kernel', 0., 10., device=cuda),
               _event('wgrad', 15., 25., device=cuda),
               _event('dgrad', 100., 130., device=cuda)]
    events = [region, conv, node, conv_bwd, sync] + kernels
    averages = [SimpleNamespace(key='aten::convolution_backward',
                                self_cpu_time_total=60., count=1),
                SimpleNamespace(key='aten::convolution',
                                self_cpu_time_total=40., count=1),
                SimpleNamespace(key=REGION_PREFIX + 'backbone',
                                self_cpu_time_total=1., count=1)]
    return SimpleNamespace(events=lambda: events,
                           key_averages=lambda: averages, wall_s=200e-6)


def test_summary_of_a_device_profile(capsys):
    s = summarize(_fake_profile(), steps=2)
    assert s['wall_ms'] == pytest.approx(0.2)
    # busy: the union of the kernels' intervals, 50 us over 2 steps (the
    # region's annotation on the device's timeline is no kernel)
    assert s['device_busy_ms'] == pytest.approx(0.025)
    assert s['device_idle_ms'] == pytest.approx(0.2 - 0.025)
    assert s['kernels_per_step'] == 1.5
    assert [g['us'] for g in s['largest_gaps']] == [75., 5.]
    assert s['largest_gaps'][0] == dict(us=75., prev='wgrad', next='dgrad')
    assert s['gaps_over_20us_ms'] == pytest.approx(0.0375)
    assert [k['name'] for k in s['top_kernels']] == [
        'dgrad', 'conv_kernel', 'wgrad']
    assert s['top_kernels'][0]['share'] == pytest.approx(0.6)
    assert s['host_syncs_per_step'] == 0.5
    # the backward node's kernels belong to the forward operator's region
    assert s['region_device_ms'] == {'backbone (backward)': 0.02,
                                     'backbone': 0.005}
    assert s['region_cpu_ms']['backbone (backward)'] == pytest.approx(0.03)
    assert s['region_ops'] == {'backbone': 0.5, 'backbone (backward)': 0.5}
    # region labels are not operators
    assert [o['name'] for o in s['top_cpu_ops']] == [
        'aten::convolution_backward', 'aten::convolution']
    print_profile('fake row', s)
    printed = capsys.readouterr().out
    assert 'wall 0.20 ms/step; device busy' in printed
    assert '(87%); 2 kernels' in printed  # 0.175 of 0.2 ms
    assert '75  wgrad -> dgrad' in printed
    assert 'backbone (backward) 0.02' in printed


def test_regions_wrap_and_unwrap_the_models_parts():
    model = torch.nn.Module()
    model.backbone = torch.nn.Linear(2, 2)
    model.neck = torch.nn.Identity()
    with model_regions(model):
        assert 'forward' in vars(model.backbone)
        with torch.profiler.profile() as prof:
            model.neck(model.backbone(torch.ones(1, 2)))
    assert 'forward' not in vars(model.backbone)
    assert 'forward' not in vars(model.neck)
    names = {e.name for e in prof.events()}
    assert {REGION_PREFIX + 'backbone', REGION_PREFIX + 'neck'} <= names


@pytest.mark.slow
def test_cpu_profile_of_a_denseclip_training_step(capsys, tmp_path):
    bench = load_tool('benchmark')
    results = bench.main([TOY_CONFIG, '--size', '64', '--iters', '1',
                          '--warmup', '0', '--device', 'cpu', '--modes',
                          'train', '--profile', '1', '--profile-dir',
                          str(tmp_path / 'traces')])
    traces = list((tmp_path / 'traces').iterdir())
    assert [t.name for t in traces] == ['model_train_0_cpu.json.gz']
    with gzip.open(traces[0]) as f:
        names = {e.get('name') for e in json.load(f)['traceEvents']}
    assert REGION_PREFIX + 'text_encoder' in names
    printed = capsys.readouterr().out
    profile = results[0]['rows'][0]['profile']
    assert 'device_busy_ms' not in profile  # no kernels on a CPU
    cpu = profile['region_cpu_ms']
    for region in ('backbone', 'backbone (backward)', 'text_encoder',
                   'text_encoder (backward)', 'context_decoder',
                   'context_decoder (backward)', 'neck', 'decode_head',
                   'identity_head.loss'):
        assert cpu[region] > 0, region
    assert profile['region_ops']['text_encoder'] > 10
    assert profile['wall_ms'] > 0
    assert 'profile: model: train step (AdamW) (cpu) (1 steps)' in printed
    assert 'CPU time by region' in printed


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_cuda_profile_counts_kernels_and_regions():
    """The same summary on a GPU: kernels, busy time, regions' device
    time (torch's profiler events as this torch version makes them)."""
    bench = load_tool('benchmark')
    results = bench.main([TOY_CONFIG, '--size', '64', '--iters', '1',
                          '--warmup', '1', '--device', 'cuda', '--modes',
                          'train', '--profile', '2'])
    profile = results[0]['rows'][0]['profile']
    assert profile['kernels_per_step'] > 50
    assert 0 < profile['device_busy_ms'] <= profile['wall_ms']
    # the text path and context decoder replay CUDA graphs in training,
    # whose kernels this torch may or may not tie to an operator: only the
    # backbone's kernels are asserted to carry their region
    assert profile['region_device_ms']['backbone'] > 0
    assert profile['region_device_ms']['backbone (backward)'] > 0
    assert profile['top_kernels'][0]['ms'] > 0
