"""Tools run in a fresh interpreter: the lines worth showing are streamed,
a failure ends with the last lines and the exit status named."""
import re

import pytest

from denseclip.utils.tool_process import ToolFailed, run_tool_process

pytestmark = pytest.mark.integration  # runs small scripts as processes
SHOW = re.compile(r'Iter\(train\)')


def write_tool(repo, body):
    (repo / 'tools').mkdir(parents=True, exist_ok=True)
    (repo / 'tools' / 'fake.py').write_text(body)


def test_shows_matching_lines_and_returns_everything(tmp_path, capsys):
    write_tool(tmp_path, "import sys\nprint('noise')\n"
               "print('x - mmengine - Iter(train) [1/2]', sys.argv[1])\n")
    out = run_tool_process(str(tmp_path), 'fake.py', ['A'], SHOW)
    assert out == 'noise\nx - mmengine - Iter(train) [1/2] A\n'
    shown = capsys.readouterr().out
    assert 'Iter(train) [1/2] A' in shown and 'noise' not in shown


def test_a_failure_names_the_tool_and_its_status(tmp_path, capsys):
    write_tool(tmp_path, "print('last words')\nraise SystemExit(3)\n")
    with pytest.raises(ToolFailed, match=r'tools/fake.py failed \(exit 3\)'):
        run_tool_process(str(tmp_path), 'fake.py', [], SHOW)
    assert 'last words' in capsys.readouterr().err
