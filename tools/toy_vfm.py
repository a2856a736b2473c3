"""Train the toy VFM and report how well its patch affinities group each class
(toy-vfm).

    python tools/toy_vfm.py [--work-dir work_dirs/toy] [--data-seeds 0 1 2 3]
                            [--train-on each|seed0] [--steps N] [--seed S]
                            [--threads 2]

For each data seed: its toy dataset (``prepare_toy_files``), the toy VFM
trained without labels on that seed's training images
(``denseclip.toy.vfm_training.train_toy_vfm``, cached in
``WORK_DIR/vfm``), and on that seed's validation images (at the toy
configs' 2x test scale) the share of ProxyCLIP's attention weight that stays
in a patch's own class (``denseclip.toy.vfm_affinity``) for the VFM
trained on that seed's images, the one trained on seed 0's (the data the
recipe was tuned on), the same ViT at its random initialisation, and the
trained toy ViT CLIP's last-block input tokens
(``prepare_trained_clip(work_dir, 'ViT')``). Prints the recipe and markdown
tables, with the mean and the worst seed. ``--train-on seed0``: only the VFM
trained on seed 0's images (one training instead of one per seed).
"""
import argparse
import os.path as osp
import sys
import time
from typing import Dict, List, Optional, Sequence

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

ROWS = ('trained VFM (this seed\'s images)', 'trained VFM (seed 0\'s images)',
        'random VFM', 'toy CLIP (last-block input)')


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='train the toy VFM and score its patch affinities')
    parser.add_argument('--work-dir', default=osp.join('work_dirs', 'toy'))
    parser.add_argument('--data-seeds', type=int, nargs='+',
                        default=[0, 1, 2, 3])
    parser.add_argument('--steps', type=int, default=None,
                        help='training steps (default: the recipe\'s)')
    parser.add_argument('--seed', type=int, default=0,
                        help='training seed (weights, augmentations)')
    parser.add_argument('--train-on', choices=('each', 'seed0'),
                        default='each',
                        help='each: a VFM trained on every data seed\'s own '
                        'training images (and seed 0\'s scored on all); '
                        'seed0: only seed 0\'s VFM, scored on every seed')
    parser.add_argument('--threads', type=int, default=2,
                        help='torch threads (the result depends on it)')
    return parser.parse_args(argv)


def score_table(scores: Dict[str, Dict[int, Dict]], seeds: List[int],
                key: str, rows: Sequence[str] = ROWS) -> List[str]:
    """Markdown rows: one per model, one column per seed, mean, worst."""
    lines = ['| model | ' + ' | '.join(f'seed {s}' for s in seeds) +
             ' | mean | worst |',
             '|---|' + '---:|' * (len(seeds) + 2)]
    for row in rows:
        values = [scores[row][s][key] for s in seeds]
        cells = [f'{v:.3f}' for v in values]
        cells += [f'{sum(values) / len(values):.3f}', f'{min(values):.3f}']
        lines.append(f'| {row} | ' + ' | '.join(cells) + ' |')
    return lines


def class_table(scores: Dict[str, Dict[int, Dict]], seeds: List[int],
                rows: Sequence[str] = ROWS) -> List[str]:
    """Markdown rows: one per model, one column per toy class (its share,
    mean over the seeds)."""
    from denseclip.toy.data import TOY_CLASSES
    lines = ['| model | ' + ' | '.join(TOY_CLASSES) + ' |',
             '|---|' + '---:|' * len(TOY_CLASSES)]
    for row in rows:
        cells = []
        for c in range(len(TOY_CLASSES)):
            values = [scores[row][s]['per_class'][c] for s in seeds
                      if c in scores[row][s]['per_class']]
            cells.append(f'{sum(values) / len(values):.3f}' if values else '-')
        lines.append(f'| {row} | ' + ' | '.join(cells) + ' |')
    return lines


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    args = parse_args(argv)
    import json

    import torch
    torch.set_num_threads(args.threads)
    from denseclip.toy.files import prepare_toy_files, prepare_trained_clip
    from denseclip.toy.vfm_affinity import (affinity_scores,
                                            clip_patch_tokens,
                                            validation_samples, vfm_features)
    from denseclip.toy.vfm_training import (TOY_VFM_RECIPE, build_toy_vit,
                                            load_toy_vfm,
                                            train_toy_vfm)
    recipe = TOY_VFM_RECIPE.replace(seed=args.seed)
    if args.steps is not None:
        recipe = recipe.replace(steps=args.steps)
    rows = ROWS if args.train_on == 'each' else ROWS[1:]
    clip = prepare_trained_clip(args.work_dir, 'ViT')
    clip_features, clip_patch = clip_patch_tokens(clip.clip_file)
    scores = {row: {} for row in rows}
    trained = {}  # data seed -> (file, training seconds)

    def vfm_of(data_seed: int) -> str:
        if data_seed not in trained:
            path = train_toy_vfm(args.work_dir, data_seed, seed=args.seed,
                                 steps=recipe.steps, recipe=recipe)
            with open(osp.splitext(path)[0] + '.json') as f:
                trained[data_seed] = (path, json.load(f)['seconds'])
        return trained[data_seed][0]

    for seed in args.data_seeds:
        data_root = prepare_toy_files(args.work_dir, seed).data_root
        models = {ROWS[1]: lambda: vfm_features(load_toy_vfm(vfm_of(0))),
                  ROWS[2]: lambda: vfm_features(build_toy_vit(recipe))}
        if args.train_on == 'each':
            models[ROWS[0]] = lambda: vfm_features(load_toy_vfm(vfm_of(seed)))
        features = {row: models[row]() for row in rows if row in models}
        samples = validation_samples(data_root)
        start = time.time()
        for row, feats in features.items():
            scores[row][seed] = affinity_scores(feats, recipe.patch_size,
                                                samples)
        scores[ROWS[3]][seed] = affinity_scores(clip_features, clip_patch,
                                                samples)
        print(f'[toy-vfm] data seed {seed}: scored in '
              f'{time.time() - start:.0f} s', flush=True)
    seeds = list(args.data_seeds)
    print(f'\nrecipe: {recipe.to_dict()}')
    print('trained without labels on the 200 training images of data seed '
          + ', '.join(str(s) for s in sorted(trained)) + '; seconds: ' +
          ', '.join(f'{s}: {t:.0f}' for s, (_, t) in sorted(trained.items()))
          + f' ({torch.get_num_threads()} threads)\n')
    print('Share of ProxyCLIP\'s attention weight (beta 1.2, gamma 3) on '
          'patches of the patch\'s own class, validation images at 2x; '
          'mean over classes of each class\'s mean:\n')
    print('\n'.join(score_table(scores, seeds, 'class_mean', rows)))
    print('\nThe same, mean over all patches (mostly background):\n')
    print('\n'.join(score_table(scores, seeds, 'patch', rows)))
    print('\nPer class, mean over the data seeds:\n')
    print('\n'.join(class_table(scores, seeds, rows)))
    return dict(scores=scores, recipe=recipe.to_dict(),
                files={s: p for s, (p, _) in trained.items()})


if __name__ == '__main__':
    main()
