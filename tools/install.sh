#!/usr/bin/env bash
# Install everything denseclip needs into ./.venv. Idempotent: what is already
# installed (at the right version) is kept, so a second run only checks.
#
#   VENV=.venv                 where the environment lives
#   PYTHON=python3.11          interpreter used to create it (any Python >= 3.10:
#                              torch 2.13.0's wheels need it)
#   TORCH_SPEC=torch==2.13.0   installed only when the venv has no torch yet
#                              (GPU users: install your CUDA torch into the venv first)
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PYTHON_GIVEN=${PYTHON:-}
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
MMCV_VERSION=2.1.0
say() { echo "[install] $*"; }
die() { echo "[install] $*" >&2; exit 1; }
py_version() { "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null; }

if [ ! -x "$VENV/bin/python" ] || [ -n "$PYTHON_GIVEN" ]; then
  [ -n "$(py_version "$PYTHON")" ] ||
    die "cannot run the interpreter '$PYTHON': set PYTHON to a Python >= 3.10 (e.g. PYTHON=/usr/bin/python3.12)"
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
    die "$PYTHON is Python $(py_version "$PYTHON"); denseclip needs >= 3.10"
fi
if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV with $PYTHON (Python $(py_version "$PYTHON"))"
  "$PYTHON" -m venv "$VENV"
elif [ -n "$PYTHON_GIVEN" ] &&
     [ "$(py_version "$PYTHON_GIVEN")" != "$(py_version "$VENV/bin/python")" ]; then
  die "$VENV has Python $(py_version "$VENV/bin/python"), not $(py_version "$PYTHON_GIVEN") ($PYTHON_GIVEN): remove $VENV or choose another VENV=..."
fi
PY="$VENV/bin/python"
say "using $VENV (Python $(py_version "$PY"))"
PIP=("$PY" -m pip --disable-pip-version-check -q)

# Reports, one per line, what is missing or at the wrong version.
missing() {
  "$PY" - <<'PYCODE'
import importlib.metadata as md
import importlib.util
import os
import sys

# look only at what is installed, not at this checkout's own folder
sys.path = [p for p in sys.path if p not in ('', os.getcwd())]

def version(dist):
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None

out = []
if version('torch') is None:
    out.append('torch')
tools = version('setuptools')
if (tools is None or not (77 <= int(tools.split('.')[0]) < 81)
        or version('wheel') is None or version('ninja') is None):
    out.append('buildtools')
if version('mmcv') != '2.1.0' or importlib.util.find_spec('mmcv') is None:
    out.append('mmcv')
else:
    # a full build ships the compiled ops; mmcv-lite does not
    root = os.path.dirname(importlib.util.find_spec('mmcv').origin)
    if not any(f.startswith('_ext') for f in os.listdir(root)):
        out.append('mmcv')
wanted = {'mmengine': '0.10.7', 'mmsegmentation': '1.2.2', 'ftfy': None,
          'regex': None, 'opencv-python-headless': None, 'pytest': None,
          # the hub downloads (tools/download_clip.py, hf-hub: names)
          'huggingface_hub': None,
          # open_clip's and transformers' .safetensors files
          'safetensors': None,
          # the tests' reference CLIP (tests/test_clip_layouts.py)
          'transformers': None,
          # the Corrupt transform's corruptions (README: Installation)
          'imagecorruptions-imaug': '1.1.5'}
for dist, pin in wanted.items():
    have = version(dist)
    if have is None or (pin and have != pin):
        out.append(f'{dist}=={pin}' if pin else dist)
# the 2020 imagecorruptions installs the same module name and fails on
# numpy 2: it must not shadow the fork
if version('imagecorruptions') is not None:
    out.append('no-imagecorruptions')
# the package must be installed (editable) from this checkout; an import
# alone would also succeed from the repository root without any install
try:
    url = md.distribution('denseclip').read_text('direct_url.json') or ''
except md.PackageNotFoundError:
    url = ''
if f'file://{os.getcwd()}"' not in url:
    out.append('denseclip')
print('\n'.join(out))
PYCODE
}

todo=$(missing)
if [ -z "$todo" ]; then
  say "all requirements present in $VENV"
  exit 0
fi

if grep -qx torch <<<"$todo"; then
  say "installing $TORCH_SPEC"
  "${PIP[@]}" install "$TORCH_SPEC"
else
  # the user's torch (e.g. a CUDA build put into the venv first) is kept
  say "keeping $("$PY" -W ignore -c 'import torch; print("torch", torch.__version__, "(CUDA %s)" % (torch.version.cuda or "none"))') found in $VENV"
fi
if grep -qx buildtools <<<"$todo"; then
  say "installing build tools (setuptools with pkg_resources, wheel, ninja)"
  "${PIP[@]}" install "setuptools>=77,<81" wheel ninja numpy
fi
if grep -qx mmcv <<<"$todo"; then
  say "building mmcv==$MMCV_VERSION with ops against $("$PY" -c 'import torch; print("torch", torch.__version__)')"
  say "this compiles C++ (about 12 minutes on 2 cores; pip caches the wheel for next time)"
  MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} \
    "${PIP[@]}" install --no-build-isolation "mmcv==$MMCV_VERSION"
fi
if grep -qx no-imagecorruptions <<<"$todo"; then
  say "removing imagecorruptions (the 2020 release, broken on numpy 2; the fork imagecorruptions-imaug replaces it)"
  "${PIP[@]}" uninstall -y imagecorruptions
  # both install the module 'imagecorruptions': reinstall the fork's files
  "${PIP[@]}" install --force-reinstall --no-deps "imagecorruptions-imaug==1.1.5"
fi
pkgs=$(grep -v -x -e torch -e buildtools -e mmcv -e denseclip -e no-imagecorruptions <<<"$todo" || true)
if [ -n "$pkgs" ]; then
  say "installing $(echo $pkgs)"
  # shellcheck disable=SC2086
  "${PIP[@]}" install $pkgs
fi
if grep -qx denseclip <<<"$todo"; then
  say "installing denseclip (editable)"
  "${PIP[@]}" install --no-build-isolation --no-deps -e .
fi

left=$(missing)
if [ -n "$left" ]; then
  say "still missing after install: $(echo $left)" >&2
  exit 1
fi
say "done: $("$PY" -c 'import torch, mmcv, mmseg; print(f"torch {torch.__version__}, mmcv {mmcv.__version__}, mmseg {mmseg.__version__}")')"
