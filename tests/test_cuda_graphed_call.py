"""CudaGraphedCall (DenseCLIP's text path and context decoder in training
from CUDA graphs): eager where graphs do not apply, a failed capture falls
back with a warning; on a GPU, the same losses and gradients as eager, one
graph per call signature, optimizer updates seen by the graphs."""
import copy

import pytest
import torch
from conftest import tiny_denseclip_cfg
from denseclip_helpers import make_samples
from mmseg.registry import MODELS
from torch import nn

from denseclip.models.layers.cuda_graphed_call import CudaGraphedCall

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')


def test_cpu_calls_run_eagerly_and_capture_nothing():
    call = CudaGraphedCall('test')
    lin = nn.Linear(3, 2)
    x = torch.randn(4, 3, requires_grad=True)
    assert not call.usable(lin, (x,))
    torch.testing.assert_close(call(lin, x), lin(x))
    assert len(call) == 0


def test_no_gradient_or_hooks_mean_eager(monkeypatch):
    call = CudaGraphedCall('test')
    lin = nn.Linear(3, 2)
    x = torch.randn(4, 3)
    # pretend the tensor is on a GPU: only the other conditions decide
    monkeypatch.setattr(torch.Tensor, 'is_cuda', property(lambda t: True))
    monkeypatch.setattr(torch.cuda, 'is_current_stream_capturing',
                        lambda: False)
    assert call.usable(lin, (x,))  # the weights need gradients
    with torch.no_grad():
        assert not call.usable(lin, (x,))
    handle = lin.register_forward_hook(lambda *a: None)
    assert not call.usable(lin, (x,))
    handle.remove()
    lin.requires_grad_(False)
    assert not call.usable(lin, (x,))  # nothing to differentiate


def test_failed_capture_warns_once_and_runs_eagerly(monkeypatch):
    call = CudaGraphedCall('the test module')
    lin = nn.Linear(3, 2)
    x = torch.randn(4, 3, requires_grad=True)
    monkeypatch.setattr(CudaGraphedCall, 'usable', lambda *a: True)

    def refuse(*args, **kwargs):
        raise RuntimeError('operation not permitted when stream is '
                           'capturing')

    monkeypatch.setattr(torch.cuda, 'make_graphed_callables', refuse)
    monkeypatch.setattr(torch.cuda, 'device', lambda d: torch.device('cpu'))
    with pytest.warns(UserWarning, match='the test module: CUDA graph '
                      'capture failed, running it eagerly from now on '
                      r'\(RuntimeError: operation not permitted'):
        out = call(lin, x)
    torch.testing.assert_close(out, lin(x))
    assert call.enabled is False and len(call) == 0


def _tiny_cuda_denseclip(rn_clip):
    """A tiny DenseCLIP in training mode on the GPU, without dropout (the
    same numbers with and without graphs, randomness apart)."""
    torch.manual_seed(0)
    cfg = tiny_denseclip_cfg(rn_clip.shape, rn_clip.jit)
    cfg.context_decoder.dropout = 0.
    cfg.decode_head.dropout_ratio = 0.
    model = MODELS.build(cfg)
    model.init_weights()
    return model.cuda().train()


def _train_losses(model, inputs, samples):
    model.zero_grad(set_to_none=True)
    losses = model.loss(inputs, samples)
    loss = sum(v for k, v in losses.items() if 'loss' in k)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()
             if p.grad is not None}
    return loss.detach(), grads


@cuda
@pytest.mark.parametrize('amp', [False, True])
def test_graphed_training_equals_eager_on_cuda(rn_clip, amp):
    eager = _tiny_cuda_denseclip(rn_clip)
    graphed = copy.deepcopy(eager)
    eager.cuda_graphs = False
    inputs = torch.randn(2, 3, 64, 64, device='cuda')
    samples = [s.to('cuda') for s in make_samples(2, 64, 64)]
    with torch.autocast('cuda', dtype=torch.bfloat16, enabled=amp):
        loss0, grads0 = _train_losses(eager, inputs, samples)
        for _ in range(2):  # capture, then replay
            loss1, grads1 = _train_losses(graphed, inputs, samples)
    assert len(graphed._text_graphs) == 1
    assert len(graphed._decoder_graphs) == 1
    # graphs may pick other cuBLAS kernels than eager calls (same math,
    # another summation order)
    tol = dict(rtol=2e-2, atol=1e-3) if amp else dict(rtol=1e-3, atol=1e-5)
    torch.testing.assert_close(loss1, loss0, **tol)
    assert grads1.keys() == grads0.keys()
    for name in ('contexts', 'gamma', 'context_decoder.out_proj.1.weight'):
        torch.testing.assert_close(grads1[name], grads0[name], **tol)


@cuda
def test_graphs_see_optimizer_updates_and_new_shapes(rn_clip):
    model = _tiny_cuda_denseclip(rn_clip)
    eager = copy.deepcopy(model)
    eager.cuda_graphs = False
    opts = [torch.optim.SGD([p for p in m.parameters() if p.requires_grad],
                            lr=0.05) for m in (model, eager)]
    inputs = torch.randn(2, 3, 64, 64, device='cuda')
    samples = [s.to('cuda') for s in make_samples(2, 64, 64)]
    for _ in range(3):
        for m, opt in zip((model, eager), opts):
            _train_losses(m, inputs, samples)
            opt.step()
    loss, _ = _train_losses(model, inputs, samples)
    loss_eager, _ = _train_losses(eager, inputs, samples)
    torch.testing.assert_close(loss, loss_eager, rtol=1e-3, atol=1e-5)
    # another batch size: the decoder gets a second graph, the text path
    # (the contexts alone) keeps its one
    _train_losses(model, inputs[:1], samples[:1])
    assert len(model._decoder_graphs) == 2
    assert len(model._text_graphs) == 1
    # eval: no graphs, the same cached text as before
    model.eval()
    with torch.no_grad():
        model.predict(inputs)
    assert len(model._decoder_graphs) == 2


@cuda
def test_a_graph_reads_weights_updated_in_place_and_gives_their_grads():
    torch.manual_seed(0)
    lin = nn.Sequential(nn.Linear(8, 16), nn.GELU(), nn.Linear(16, 4)).cuda()
    call = CudaGraphedCall('mlp')
    x = torch.randn(5, 8, device='cuda', requires_grad=True)
    for step in range(3):
        out = call(lin, x)
        ref = lin(x)
        torch.testing.assert_close(out, ref, rtol=1e-3, atol=1e-5)
        grads = torch.autograd.grad(out.sum(), [x, lin[0].weight])
        refs = torch.autograd.grad(ref.sum(), [x, lin[0].weight])
        for g, r in zip(grads, refs):
            torch.testing.assert_close(g, r, rtol=1e-3, atol=1e-5)
        with torch.no_grad():  # an optimizer step: in place
            for p in lin.parameters():
                p.mul_(0.5).add_(0.1)
    assert len(call) == 1
    # new storage (a model moved or reloaded): a new graph
    lin[0].weight = nn.Parameter(lin[0].weight.detach().clone())
    torch.testing.assert_close(call(lin, x), lin(x), rtol=1e-3, atol=1e-5)
    assert len(call) == 2
