"""The papers' optimizer and learning-rate schedule, as the configs build them."""
import copy
import os.path as osp

import pytest
import torch
from conftest import tiny_denseclip_cfg
from denseclip_helpers import CONFIG_DIR, make_samples
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import PARAM_SCHEDULERS
from mmseg.registry import MODELS

R50 = osp.join(CONFIG_DIR, 'denseclip_fpn_r50_ade.py')


def test_paper_optimizer_freezes_text_encoder_and_trains_the_rest(rn_clip):
    """The real RN50 config's optim_wrapper on a tiny DenseCLIP: the text
    encoder gets no gradient and no update (not even weight decay); contexts,
    gamma, context decoder, backbone, neck and head move."""
    optim_cfg = Config.fromfile(R50).optim_wrapper
    model = MODELS.build(tiny_denseclip_cfg(rn_clip.shape, rn_clip.jit))
    model.init_weights()
    optim = build_optim_wrapper(model, copy.deepcopy(optim_cfg))
    base_lr = optim_cfg.optimizer.lr
    groups = {id(p): g for g in optim.optimizer.param_groups
              for p in g['params']}
    for name, p in model.named_parameters():
        if name.startswith('text_encoder.'):
            # frozen (requires_grad=False): mmengine leaves it out of the
            # optimizer; were it in, lr_mult 0 would give it lr 0
            assert id(p) not in groups or groups[id(p)]['lr'] == 0.0, name
            continue
        group = groups[id(p)]
        if name.startswith('backbone.'):
            assert group['lr'] == pytest.approx(0.1 * base_lr), name
        else:
            assert group['lr'] == pytest.approx(base_lr), name

    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    model.train()
    for step in range(2):
        losses = model.loss(torch.randn(2, 3, 64, 64),
                            make_samples(2, 64, 64, num_classes=4, seed=step))
        loss = sum(v for k, v in losses.items() if 'loss' in k)
        optim.backward(loss)
        assert all(p.grad is None for p in model.text_encoder.parameters())
        optim.step()
        optim.zero_grad()
    after = dict(model.named_parameters())
    for name, value in before.items():
        if name.startswith('text_encoder.'):
            assert torch.equal(after[name], value), name
    for part in ('contexts', 'gamma', 'context_decoder.', 'backbone.',
                 'neck.', 'decode_head.'):
        moved = [not torch.equal(after[n], v) for n, v in before.items()
                 if n.startswith(part)]
        assert moved and any(moved), part
    assert not torch.equal(after['contexts'], before['contexts'])
    assert not torch.equal(after['gamma'], before['gamma'])


def test_paper_lr_schedule_warmup_then_poly():
    """lr: ~0 at the start, 1e-4 after 1500 linear warm-up iterations, then
    poly (power 0.9) down to 1e-6 at 80k."""
    cfg = Config.fromfile(R50)
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([param], lr=cfg.optim_wrapper.optimizer.lr)
    schedulers = [
        PARAM_SCHEDULERS.build(dict(s, optimizer=optimizer))
        for s in cfg.param_scheduler
    ]
    lrs = {}
    for it in range(cfg.train_cfg.max_iters):
        if it in (0, 750, 1500, 40750, 79999):
            lrs[it] = optimizer.param_groups[0]['lr']
        optimizer.step()
        for s in schedulers:
            s.step()
    assert lrs[0] == pytest.approx(1e-10)
    assert lrs[750] == pytest.approx(0.5e-4, rel=1e-3)
    assert lrs[1500] == pytest.approx(1e-4)
    # poly over the 78.5k iterations after warm-up
    expected = (1e-4 - 1e-6) * (1 - 39250 / 78500)**0.9 + 1e-6
    assert lrs[40750] == pytest.approx(expected, rel=1e-3)
    assert lrs[79999] == pytest.approx(1e-6, rel=0.05)
