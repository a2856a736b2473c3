#!/usr/bin/env bash
# Testing on a Slurm cluster (mmseg's script; mmengine's slurm launcher):
#   [GPUS=8] [GPUS_PER_NODE=8] [CPUS_PER_TASK=5] [SRUN_ARGS="..."] \
#   bash tools/slurm_test.sh PARTITION JOB_NAME CONFIG [CHECKPOINT] \
#       [test.py args...]
# Without CHECKPOINT (nothing, `none` or `-` in its place, or the test.py
# options straight after CONFIG) the model is initialised from its config,
# as MaskCLIP and the training-free methods run from their CLIP file. srun
# starts GPUS tasks, GPUS_PER_NODE per node, one GPU each; SRUN_ARGS go to
# srun as they are. PYTHON is the interpreter (default: this checkout's
# .venv, activated or not).
set -euo pipefail
if [ $# -lt 3 ]; then
  echo "usage: bash $0 PARTITION JOB_NAME CONFIG [CHECKPOINT|none]" \
       "[test.py args...]" >&2
  exit 2
fi
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
shift 3
CHECKPOINT=()
if [ $# -gt 0 ] && [[ "$1" != -?* ]]; then
  # `none` / `-` mean no checkpoint: tools/test.py reads them so
  CHECKPOINT=("$1")
  shift
fi
GPUS=${GPUS:-4}
GPUS_PER_NODE=${GPUS_PER_NODE:-4}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}
TOOLS="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=tools/find_python.sh
source "$TOOLS/find_python.sh"

# SRUN_ARGS unquoted on purpose: several srun options in one variable
# shellcheck disable=SC2086
PYTHONPATH="$TOOLS/..${PYTHONPATH:+:$PYTHONPATH}" \
srun -p "$PARTITION" \
    --job-name="$JOB_NAME" \
    --gres=gpu:"$GPUS_PER_NODE" \
    --ntasks="$GPUS" \
    --ntasks-per-node="$GPUS_PER_NODE" \
    --cpus-per-task="$CPUS_PER_TASK" \
    --kill-on-bad-exit=1 \
    $SRUN_ARGS \
    "$PYTHON" -u "$TOOLS/test.py" "$CONFIG" ${CHECKPOINT[@]+"${CHECKPOINT[@]}"} \
    --launcher slurm "$@"
