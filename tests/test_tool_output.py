"""What the tools print, and what their runs leave behind.

The console shows the run (what was loaded, progress, metrics, errors), not
mmengine's start-up dump (environment, config, hook order: about 900 lines
of one ``tools/test.py --tta`` run) nor third-party warnings users cannot act
on; ``--verbose`` shows those too, and the log file in the work dir always
has them. A ``tools/test.py`` / ``tools/train.py`` run leaves no
``/tmp/pymp-*`` folder (its dataloader workers, killed at exit, left one
each)."""
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import warnings

import pytest
from denseclip_helpers import REPO, TOY_CONFIG, load_tool
from mmengine.logging import MMLogger
from tiny_runner import runner_cfg, write_dataset

from denseclip.engine import build_runner, dataloader_workers_shut_down
from denseclip.toy.run_options import path_options, schedule_options
from denseclip.utils.tool_output import (THIRD_PARTY_WARNINGS,
                                         RunnerConsoleFilter, quiet_warnings)

# the start-up dump mmengine logs, as the console would show it
DUMP = ('System environment:', 'Config:', 'Hooks will be executed in the '
        'following order')


def _warn_from(module: str, message: str, category=UserWarning) -> None:
    """``warnings.warn`` as if raised in ``module``."""
    warnings.warn_explicit(message, category, f'{module}.py', 1,
                           module=module)


def _third_party(caught) -> list:
    """The warnings of THIRD_PARTY_WARNINGS among ``caught``."""
    import re
    return [str(w.message) for w in caught
            if any(re.match(m, str(w.message)) and issubclass(w.category, c)
                   for m, c, _ in THIRD_PARTY_WARNINGS)]


# ------------------------------------------------------------------ units
def test_quiet_warnings_hides_the_listed_ones_and_keeps_the_rest():
    before = list(warnings.filters)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        with quiet_warnings():
            for message, category, module in THIRD_PARTY_WARNINGS:
                _warn_from(module.replace('\\', ''), message.replace(
                    '\\', '') + ' (the rest of the text)', category)
            # the same text from our own code, and another mmseg warning
            _warn_from('denseclip.models', '``build_loss`` would be '
                       'deprecated soon')
            _warn_from('mmseg.models.decode_heads.decode_head',
                       'For binary segmentation, we suggest using')
        with quiet_warnings(verbose=True):
            _warn_from('mmseg.models.builder',
                       '``build_loss`` would be deprecated soon, please use')
    assert [str(w.message) for w in caught] == [
        '``build_loss`` would be deprecated soon',
        'For binary segmentation, we suggest using',
        '``build_loss`` would be deprecated soon, please use']
    assert warnings.filters == before


@pytest.mark.parametrize('message, shown', [
    ('\n' + '-' * 60 + '\nSystem environment:\n    sys.platform: linux',
     False),
    ("Config:\nmodel = dict(type='DenseCLIP')", False),
    ('Hooks will be executed in the following order:\nbefore_run:', False),
    ('paramwise_options -- backbone.conv1.weight:lr=0.0001', False),
    ('text_encoder.ln_final.bias is skipped since its requires_grad=False',
     False),
    ('The prefix is not set in metric class IoUMetric.', False),
    ('"FileClient" will be deprecated in future. Please use io functions',
     False),
    ('Iter(test) [20/40]    eta: 0:00:05  time: 0.2236', True),
    ('Load checkpoint from work_dirs/x/iter_4.pth', True),
    ('loaded 123 tensors from RN50.pt into CLIPResNetWithAttention', True),
    ('Config file work_dirs/x.py has no test_dataloader', True),
])
def test_the_console_filter_drops_the_dump_only(message, shown):
    record = logging.LogRecord('mmengine', logging.INFO, __file__, 1,
                               message, None, None)
    assert RunnerConsoleFilter().filter(record) is shown


@pytest.fixture
def tiny_data(tmp_path) -> str:
    root = str(tmp_path / 'data')
    write_dataset(root)
    return root


def _file_and_console(runner) -> tuple:
    logger: MMLogger = runner.logger
    console = [h for h in logger.handlers
               if type(h) is logging.StreamHandler]
    files = [h for h in logger.handlers
             if isinstance(h, logging.FileHandler)]
    return files, console


@pytest.mark.parametrize('verbose', [False, True])
def test_build_runner_keeps_the_dump_in_the_log_file(tiny_data, tmp_path,
                                                     capsys, verbose):
    cfg = runner_cfg(tiny_data, str(tmp_path / 'work'),
                     f'quiet_console_{verbose}', log_level='INFO')
    runner = build_runner(cfg, verbose=verbose)
    printed = capsys.readouterr().out
    files, console = _file_and_console(runner)
    assert len(files) == 1 and len(console) == 1
    assert not any(isinstance(f, RunnerConsoleFilter)
                   for f in files[0].filters)
    assert any(isinstance(f, RunnerConsoleFilter)
               for f in console[0].filters) is not verbose
    with open(runner.logger.log_file) as f:
        logged = f.read()
    for line in DUMP:
        assert line in logged
        assert (line in printed) is verbose
    assert ('config and hook order: in ' + runner.logger.log_file
            in printed) is not verbose


@pytest.mark.integration
def test_dataloader_workers_end_the_ordinary_way(tiny_data, tmp_path):
    """Persistent workers stopped after the run exit by themselves (exit
    code 0), so their own clean-up runs; mmengine leaves them to be killed
    (SIGTERM) at the end of the process."""
    cfg = runner_cfg(tiny_data, str(tmp_path / 'work'), 'workers_end')
    cfg.test_dataloader.update(num_workers=2, persistent_workers=True)
    runner = build_runner(cfg)
    with dataloader_workers_shut_down(runner):
        runner.test()
        workers = list(runner.test_loop.dataloader._iterator._workers)
        assert len(workers) == 2 and all(w.is_alive() for w in workers)
    assert [w.exitcode for w in workers] == [0, 0]
    assert runner.test_loop.dataloader._iterator is None  # anew next time


# --------------------------------------------- the tools, as users run them
def short_temp_dir() -> str:
    """A new folder for a tool's TMPDIR, with a short path: a dataloader
    worker hands tensors over through a socket at
    ``TMPDIR/pymp-XXXXXXXX/listener-XXXXXXXX``, and with a path over the 107
    bytes of an AF_UNIX address the batch is dropped (a traceback on the
    worker's stderr) and the run waits forever; pytest's tmp_path under
    pytest-xdist is that long."""
    path = tempfile.mkdtemp(prefix='dc-tmp-')
    assert len(path) + len('/pymp-12345678/listener-12345678') < 108, path
    return path


@pytest.fixture
def tool_tmp():
    path = short_temp_dir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _run_tool(tool: str, args: list, tmp_dir: str) -> str:
    """``python tools/<tool> args`` in a fresh interpreter whose temporary
    folder is ``tmp_dir``; its stdout and stderr together."""
    path = os.pathsep.join(
        p for p in (REPO, os.environ.get('PYTHONPATH')) if p)
    env = dict(os.environ, TMPDIR=tmp_dir, PYTHONPATH=path)
    proc = subprocess.run(
        [sys.executable, os.path.join(REPO, 'tools', tool)] + args, cwd=REPO,
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:]
    return proc.stdout


def _pymp(tmp_dir: str) -> list:
    return sorted(n for n in os.listdir(tmp_dir) if n.startswith('pymp-'))


@pytest.fixture(scope='module')
def toy_test_args(shared_toy_files):
    """tools/test.py on the toy config, 2 validation images, slide inference,
    its 2 persistent dataloader workers."""
    return [TOY_CONFIG, '--cfg-options'] + path_options(shared_toy_files) + [
        'test_dataloader.dataset.indices=2']


@pytest.fixture(scope='module')
def quiet_test_run(toy_test_args, tmp_path_factory):
    tmp = tmp_path_factory.mktemp('quiet_test_run')
    tool_tmp = short_temp_dir()
    out = _run_tool('test.py', toy_test_args[:1] + [
        '--work-dir', str(tmp / 'work')] + toy_test_args[1:], tool_tmp)
    yield out, tmp, tool_tmp
    shutil.rmtree(tool_tmp, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.integration
def test_tools_test_prints_the_run_not_the_dump(quiet_test_run):
    """About 20 lines (was about 800): the load report, progress and the
    metrics; no environment, config, hook order or third-party warning.
    The log file in the work dir has them."""
    out, tmp, _ = quiet_test_run
    lines = out.splitlines()
    assert len(lines) <= 30, out
    for line in DUMP + ('Warning', 'paramwise_options', 'requires_grad'):
        assert line not in out
    for shown in ('DenseCLIP: 5 class names from the dataset metainfo',
                  'loaded 123 tensors from', 'Iter(test) [2/2]', 'mIoU:',
                  'per class results:'):
        assert shown in out
    log_file = out.split('config and hook order: in ')[1].split()[0]
    assert log_file.startswith(str(tmp / 'work'))
    with open(log_file) as f:
        logged = f.read()
    assert all(line in logged for line in DUMP)


@pytest.mark.slow
@pytest.mark.integration
def test_tools_test_leaves_no_temp_folders(quiet_test_run):
    """Its two persistent workers, killed at exit, left two /tmp/pymp-*."""
    _, _, tool_tmp = quiet_test_run
    assert _pymp(tool_tmp) == []


@pytest.mark.slow
@pytest.mark.integration
def test_tools_test_verbose_prints_everything(toy_test_args, tmp_path,
                                              tool_tmp):
    out = _run_tool('test.py', toy_test_args[:1] + [
        '--work-dir', str(tmp_path / 'work'), '--verbose'] +
        toy_test_args[1:], tool_tmp)
    assert all(line in out for line in DUMP)
    assert "UserWarning: ``build_loss`` would be deprecated soon" in out
    assert len(out.splitlines()) > 500


@pytest.mark.slow
@pytest.mark.integration
def test_tools_train_is_quiet_and_leaves_no_temp_folders(shared_toy_files,
                                                         tmp_path, tool_tmp):
    """2 iterations of the toy config: no per-parameter optimizer lines
    (hundreds), no frozen-tower warnings, no third-party warnings; its
    persistent training workers leave no /tmp/pymp-* (4 were left by a
    run with validation)."""
    out = _run_tool('train.py', [
        TOY_CONFIG, '--work-dir', str(tmp_path / 'work'), '--cfg-options'] +
        path_options(shared_toy_files) + schedule_options(2, validate=False),
        tool_tmp)
    for line in DUMP + ('Warning', 'paramwise_options', 'requires_grad'):
        assert line not in out
    assert 'Iter(train) [2/2]' in out and 'Saving checkpoint at 2' in out
    assert len(out.splitlines()) <= 30, out
    assert _pymp(tool_tmp) == []


@pytest.fixture(scope='module')
def vit_file(tmp_path_factory) -> str:
    """An untrained CLIP of the trained toy ViT's shape (4 heads)."""
    from denseclip.toy.clip_model import (TRAINED_VIT, build_openai_clip,
                                          write_clip_checkpoint)
    path = str(tmp_path_factory.mktemp('vit_file') / 'toy_vit.pt')
    return write_clip_checkpoint(build_openai_clip(seed=3, **TRAINED_VIT),
                                 path)


@pytest.mark.slow
def test_toy_method_table_gives_no_third_party_warnings(vit_file, tmp_path,
                                                        monkeypatch):
    """Was 8 warning lines for each of its runs (158 of 200 lines): mmseg's
    three on every model build, and mmengine's visualizer-name warning,
    whose cause (one name for every run) is gone."""
    from denseclip.toy import files as toy_files
    monkeypatch.setitem(toy_files.DATA, 'num_train', 1)
    monkeypatch.setitem(toy_files.DATA, 'num_val', 2)
    table_tool = load_tool('toy_method_table')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        out = table_tool.main(['--work-dir', str(tmp_path / 'toy'), '--clip',
                               vit_file, '--data-seeds', '3', '--no-pamr'])
    assert len(out['results']) == len(table_tool.ROWS)
    assert _third_party(caught) == []
    assert not [w for w in caught if 'has been created' in str(w.message)]


@pytest.mark.slow
def test_toy_maskclip_table_gives_no_third_party_warnings(tmp_path,
                                                          monkeypatch):
    """As toy_method_table (mmseg's warnings on every model build, the
    visualizer-name warning from the second run on), on untrained CLIPs of
    the trained toy CLIPs' shapes (training them takes minutes)."""
    from denseclip.toy import files as toy_files
    from denseclip.toy.clip_model import (TRAINED_RESNET, TRAINED_VIT,
                                          build_openai_clip,
                                          write_clip_checkpoint)
    monkeypatch.setitem(toy_files.DATA, 'num_train', 1)
    monkeypatch.setitem(toy_files.DATA, 'num_val', 2)
    table_tool = load_tool('toy_maskclip_table')
    import toy_demo  # tools/, on the path the tool set
    shapes = dict(RN=TRAINED_RESNET, ViT=TRAINED_VIT)  # as the tool asks

    def untrained_clip(work_dir, family, fast=False):
        path = str(tmp_path / f'toy_{family}.pt')
        if not os.path.isfile(path):
            write_clip_checkpoint(build_openai_clip(seed=3, **shapes[family]),
                                  path)
        return toy_files.TrainedClip(path, True, 0.)

    monkeypatch.setattr(toy_demo, 'prepare_trained_clip', untrained_clip)
    # two runs of the ViT column (the second one met the first's visualizer)
    monkeypatch.setattr(table_tool, 'MASKCLIP_CONFIGS', {
        'ViT': table_tool.MASKCLIP_CONFIGS['ViT']})
    monkeypatch.setattr(table_tool, 'VARIANTS', table_tool.VARIANTS[:2])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        results = table_tool.main(['--work-dir', str(tmp_path / 'toy'),
                                   '--data-seeds', '3', '--no-plus'])
    assert list(results[3]['ViT']) == ['MaskCLIP', '+ key smoothing']
    assert _third_party(caught) == []
    assert not [w for w in caught if 'has been created' in str(w.message)]


@pytest.mark.slow
@pytest.mark.parametrize('verbose', [False, True])
def test_maskclip_demo_warns_only_with_verbose(vit_file, shared_toy_files,
                                               tmp_path, verbose):
    """Two of mmseg's warnings on every run (its loss builder's deprecation
    and avg_non_ignore), shown with --verbose only."""
    import glob
    demo = load_tool('maskclip_demo')
    image = sorted(glob.glob(os.path.join(
        shared_toy_files.data_root, 'images', 'validation', '*.jpg')))[0]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        assert demo.main([
            image, '--classes', 'background,red disc', '--clip', vit_file,
            '--method', 'maskclip', '--out', str(tmp_path / 'out.png'),
            '--cache-dir', str(tmp_path / 'cache')] +
            (['--verbose'] if verbose else [])) == 0
    shown = _third_party(caught)
    assert len(shown) == (2 if verbose else 0), shown
