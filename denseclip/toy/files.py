"""The toy demo's files: a toy CLIP in OpenAI's format and a toy dataset, written once.

``prepare_toy_files`` writes a random-weight toy CLIP (DenseCLIP's demo) and
a toy dataset in ADE20K's layout, each data seed in its own folder;
``prepare_trained_clip`` trains a toy CLIP on toy image-caption pairs
(MaskCLIP's demos). A JSON manifest, written last, records what each was made
from: the files are reused while it matches and written anew otherwise (also
after an interrupted run).
"""
import json
import os
import os.path as osp
import shutil
from dataclasses import dataclass
from typing import Dict, Optional

from ..utils.atomic_files import write_json_atomic

# --fast: a trained toy CLIP of this many steps (learns next to nothing)
FAST_CLIP_STEPS = 4
FAST_CLIP_BATCH = 32
# the toy files; a change here regenerates them on the next run
CLIP_SEED = 0
DATA = dict(layout='ade', num_train=200, num_val=40, train_size=[128, 128],
            val_size=[120, 150], seed=0)
# written into the toy dataset folder before its images: a folder without it
# is not the demo's and is never deleted
DATA_MARKER = '.denseclip_toy_data'


@dataclass(frozen=True)
class ToyFiles:
    """Where the toy CLIP file and dataset are, and whether they were reused."""
    clip_file: str
    data_root: str
    reused: bool


def toy_data_root(work_dir: str, data_seed: int = DATA['seed']) -> str:
    """The toy dataset of ``data_seed``: ``WORK_DIR/ade/ADEChallengeData2016``
    for the default seed (the toy configs' ``data_root``), and
    ``WORK_DIR/ade_seed<N>/ADEChallengeData2016`` for another: each seed has
    its own folder, so that a run on one seed never sees its data rewritten
    by a run on another."""
    folder = 'ade' if data_seed == DATA['seed'] else f'ade_seed{data_seed}'
    return osp.join(work_dir, folder, 'ADEChallengeData2016')


def toy_manifest_path(work_dir: str, data_seed: int = DATA['seed']) -> str:
    """The manifest of the toy files of ``data_seed``:
    ``WORK_DIR/toy_files.json`` (default seed), ``toy_files_seed<N>.json``."""
    name = ('toy_files.json' if data_seed == DATA['seed'] else
            f'toy_files_seed{data_seed}.json')
    return osp.join(work_dir, name)


def _read_json(path: str) -> Optional[Dict]:
    """The JSON object in ``path``; None when there is none or no JSON."""
    try:
        with open(path) as f:
            value = json.load(f)
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def prepare_toy_files(work_dir: str, data_seed: int = DATA['seed']) -> ToyFiles:
    """Write (or reuse) the random-weight toy CLIP and the toy dataset of
    ``data_seed`` (in its own folder: :func:`toy_data_root`).

    Each is reused while its manifest (``clip/toy_RN.json``;
    :func:`toy_manifest_path`) records the settings it was written with, and
    written anew otherwise. A dataset folder written by an earlier demo (it
    holds :data:`DATA_MARKER`) is replaced; any other folder in the way is
    an error.
    """
    from .clip_model import DEMO_RESNET, build_openai_clip, write_clip_checkpoint
    from .data import make_toy_dataset

    clip_file = osp.join(work_dir, 'clip', 'toy_RN.pt')
    clip_manifest = osp.splitext(clip_file)[0] + '.json'
    data_root = toy_data_root(work_dir, data_seed)
    manifest_path = toy_manifest_path(work_dir, data_seed)
    data = dict(DATA, seed=data_seed)
    clip = dict(DEMO_RESNET, vision_layers=list(DEMO_RESNET['vision_layers']),
                seed=CLIP_SEED, format='torchscript')
    wanted = dict(clip=clip, data=data)
    # the CLIP file is shared by every seed and has its own manifest: it is
    # left as it is while it is what is wanted (a results file records its
    # hash)
    clip_reused = _read_json(clip_manifest) == clip and osp.isfile(clip_file)
    data_reused = _read_json(manifest_path) == wanted and all(
        osp.isdir(osp.join(data_root, kind, split))
        for kind in ('images', 'annotations')
        for split in ('training', 'validation'))
    if not data_reused and osp.exists(data_root) and not osp.isfile(
            osp.join(data_root, DATA_MARKER)):
        raise SystemExit(
            f'{data_root} exists and was not written by the toy demo; move '
            'it away or choose another --work-dir')
    if not clip_reused:
        if osp.exists(clip_manifest):
            os.remove(clip_manifest)
        write_clip_checkpoint(
            build_openai_clip(seed=CLIP_SEED, **DEMO_RESNET), clip_file)
        write_json_atomic(clip_manifest, clip)
    if not data_reused:
        if osp.exists(manifest_path):
            os.remove(manifest_path)
        if osp.exists(data_root):
            shutil.rmtree(data_root)  # stale toy data of other settings
        os.makedirs(data_root)
        open(osp.join(data_root, DATA_MARKER), 'w').close()
        make_toy_dataset(data_root, **{
            k: tuple(v) if isinstance(v, list) else v
            for k, v in data.items()
        })
        write_json_atomic(manifest_path, wanted)
    return ToyFiles(clip_file, data_root, clip_reused and data_reused)


@dataclass(frozen=True)
class TrainedClip:
    """A toy CLIP trained on image-caption pairs, and whether it was reused."""
    clip_file: str
    reused: bool
    # top-1 accuracy of matching held-out images to the caption of what they
    # hold, among 16 (clip_training.content_retrieval_accuracy)
    retrieval: float


def prepare_trained_clip(work_dir: str, family: str,
                         fast: bool = False) -> TrainedClip:
    """Train (or reuse) ``WORK_DIR/clip/toy_<family>_trained.pt`` (``'RN'``, ``'ViT'``).

    Trained by ``TOY_CLIP_RECIPES[family]`` (``fast``: for
    :data:`FAST_CLIP_STEPS` steps); reused while the recipe and the training
    code's version are those its manifest records.
    """
    from .clip_model import write_clip_checkpoint
    from .clip_training import (TOY_CLIP_RECIPES, TRAINING_VERSION,
                                content_retrieval_accuracy, train_toy_clip)
    if family not in TOY_CLIP_RECIPES:
        raise SystemExit(f'toy_clip={family!r}: no such toy CLIP; known: '
                         f'{sorted(TOY_CLIP_RECIPES)}')
    recipe = TOY_CLIP_RECIPES[family]
    if fast:
        recipe = recipe.replace(steps=FAST_CLIP_STEPS, warmup=1,
                                batch_size=FAST_CLIP_BATCH)
    clip_file = osp.join(work_dir, 'clip', f'toy_{family}_trained.pt')
    manifest_path = osp.splitext(clip_file)[0] + '.json'
    wanted = dict(recipe=recipe.to_dict(), version=TRAINING_VERSION,
                  format='torchscript')
    try:
        with open(manifest_path) as f:
            recorded = json.load(f)
        if all(recorded[k] == v for k, v in wanted.items()) and \
                osp.isfile(clip_file):
            return TrainedClip(clip_file, True, recorded['retrieval'])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    if osp.exists(manifest_path):
        os.remove(manifest_path)
    print(f'  training the toy {family} CLIP on toy image-caption pairs '
          f'({recipe.steps} steps of {recipe.batch_size}, '
          f'{recipe.image_size}px)', flush=True)
    model = train_toy_clip(recipe, log=lambda line: print(line, flush=True))
    retrieval = content_retrieval_accuracy(model,
                                           image_size=recipe.image_size)
    write_clip_checkpoint(model, clip_file)
    write_json_atomic(manifest_path, dict(wanted, retrieval=retrieval))
    return TrainedClip(clip_file, False, retrieval)
