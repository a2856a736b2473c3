"""Arguments of the reference DenseCLIP/MaskCLIP configs that do nothing.

The reference configs pass ``style='pytorch'`` to every tower and ``outdim`` /
``context_length`` to the context decoder; its modules swallowed them with
``**kwargs``. We accept exactly those, so ported configs build, and still
reject any other unknown argument (usually a typo) with its name.
"""
from typing import Dict

LEGACY_ARGS = frozenset({'style', 'outdim', 'out_dim'})


def drop_legacy_args(owner: str, kwargs: Dict, legacy=LEGACY_ARGS) -> None:
    """Raise ``TypeError`` for any key of ``kwargs`` that is not a legacy one."""
    unknown = sorted(set(kwargs) - set(legacy))
    if unknown:
        raise TypeError(f'{owner} got unexpected argument(s) '
                        f'{", ".join(map(repr, unknown))}')
