"""denseclip.toy.run_options: the schedule options of short toy runs."""
import pytest
from denseclip_helpers import TOY_CONFIG

from denseclip.toy.run_options import schedule_options


def test_schedule_options_keep_warmup_inside_the_run():
    opts = dict(o.split('=') for o in schedule_options(4))
    assert opts['train_cfg.max_iters'] == '4'
    assert int(opts['param_scheduler.0.end']) < int(
        opts['param_scheduler.1.end']) == 4


def _learning_rates(iters):
    """The lr of each iteration of the DenseCLIP toy config's schedule
    with ``schedule_options(iters)`` applied (mmengine's schedulers)."""
    import torch
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import PARAM_SCHEDULERS
    cfg = Config.fromfile(TOY_CONFIG)
    cfg.merge_from_dict(dict(o.split('=') for o in schedule_options(
        iters)))
    wrapper = build_optim_wrapper(
        torch.nn.Linear(2, 2), dict(type='OptimWrapper',
                                    optimizer=dict(type='SGD', lr=1.0)))
    schedulers = [
        PARAM_SCHEDULERS.build(
            dict(step, optimizer=wrapper,
                 begin=int(step['begin']), end=int(step['end'])))
        for step in cfg.param_scheduler
    ]
    rates = []
    for _ in range(iters):
        rates.append(wrapper.get_lr()['lr'][0])
        wrapper.optimizer.step()  # no gradients: changes nothing
        for scheduler in schedulers:
            scheduler.step()
    return rates


@pytest.mark.parametrize('iters', [4, 10, 19])
def test_short_runs_leave_the_warmup(iters):
    """A short run warms up over half its iterations and then trains near
    the full lr, not at the warm-up's start factor (1e-3) throughout."""
    rates = _learning_rates(iters)
    assert rates[0] == pytest.approx(1e-3)
    assert max(rates) >= 0.4, rates
    assert rates[-1] < max(rates)  # then the poly decay


def test_long_runs_keep_the_configs_warmup():
    opts = dict(o.split('=') for o in schedule_options(600))
    assert opts['param_scheduler.0.end'] == '50'
    assert dict(o.split('=') for o in schedule_options(300))[
        'param_scheduler.0.end'] == '30'
