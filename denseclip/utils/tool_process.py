"""Run one of the repository's tools in a fresh interpreter, streaming the
lines worth showing (the whole log stays in its work dir)."""
import os
import os.path as osp
import subprocess
import sys
from typing import List, Pattern


class ToolFailed(RuntimeError):
    """A tool exited with a non-zero status."""


def run_tool_process(repo: str, tool: str, args: List[str], show: Pattern,
                     verbose: bool = False) -> str:
    """Run ``repo/tools/<tool> args``; print the output lines ``show``
    matches (all with ``verbose``) and return the whole output. On failure
    the last 60 lines go to stderr and :class:`ToolFailed` is raised."""
    cmd = [sys.executable, osp.join(repo, 'tools', tool)] + args
    print(f'$ {" ".join(cmd[1:])}', flush=True)
    # the checkout first on the path: works without `pip install -e .` too
    path = os.pathsep.join(p for p in (repo, os.environ.get('PYTHONPATH'))
                           if p)
    env = dict(os.environ, PYTHONUNBUFFERED='1', PYTHONPATH=path)
    proc = subprocess.Popen(cmd, cwd=repo, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if verbose or show.search(line.split(' - mmengine - ')[-1]):
            print('  ' + line, end='', flush=True)
    if proc.wait() != 0:
        if not verbose:
            print(''.join(lines[-60:]), file=sys.stderr)
        raise ToolFailed(f'tools/{tool} failed (exit {proc.returncode}); '
                         'the last lines of its output are above')
    return ''.join(lines)
