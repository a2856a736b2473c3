"""QuickGELU or GELU: which activation a CLIP's transformer blocks run.

The weights do not tell: OpenAI's CLIPs, MetaCLIP and DFN were trained with
QuickGELU (``x * sigmoid(1.702 x)``), LAION's and DataComp's with GELU, and
either loads into either block and gives other features, silently. The
activation of a tower is therefore resolved in this order
(:func:`resolve_activation`):

1. the tower's ``activation`` option, where a config sets it; if the file
   states another one, that is an error naming both;
2. what the file states (an OpenAI TorchScript archive: QuickGELU; a
   transformers ``config.json``: its ``hidden_act``; an open_clip
   ``open_clip_config.json``: its ``quick_gelu``);
3. the table of known weight files (:func:`table_activation`);
4. QuickGELU, assumed, and said so in the load report.
"""
import os.path as osp
from typing import NamedTuple, Optional, Tuple

import torch
from torch import Tensor, nn

from .files import GELU, QUICK_GELU, source_for_file

ACTIVATIONS = (QUICK_GELU, GELU)

# where a tower's activation came from
ACTIVATION_GIVEN = 'given'
ACTIVATION_FROM_FILE = 'file'
ACTIVATION_FROM_TABLE = 'table'
ACTIVATION_ASSUMED = 'assumed'


class QuickGELU(nn.Module):
    """CLIP's GELU approximation ``x * sigmoid(1.702 x)``."""

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.sigmoid(1.702 * x)


def check_activation(name: Optional[str], owner: str,
                     option: str = 'activation') -> Optional[str]:
    """``name`` if it is one of :data:`ACTIVATIONS` or None, else a
    ``ValueError`` naming ``owner`` and ``option``."""
    if name is not None and name not in ACTIVATIONS:
        raise ValueError(f'{owner}: {option} must be one of {ACTIVATIONS} '
                         f'or None (from the CLIP file), got {name!r}')
    return name


def build_activation(name: str) -> nn.Module:
    """The module for ``name``: :class:`QuickGELU` or ``nn.GELU`` (exact,
    as open_clip and transformers' ``'gelu'`` compute it)."""
    check_activation(name, 'build_activation', 'name')
    return QuickGELU() if name == QUICK_GELU else nn.GELU()


def activation_name(module: nn.Module) -> str:
    """The inverse of :func:`build_activation`."""
    return QUICK_GELU if isinstance(module, QuickGELU) else GELU


def table_activation(path: str) -> Optional[Tuple[str, str]]:
    """``(activation, evidence)`` as the named sources table states it for
    the weight file ``path`` (found by
    :func:`~denseclip.clip.files.source_for_file`: the hub cache path or the
    name ``download_clip.py`` saves it under); None for a file the table
    does not know."""
    found = source_for_file(path)
    if found is None:
        return None
    entry, source = found
    return source.activation, (
        f'{osp.basename(osp.normpath(path))} is {entry.name} '
        f'({source.layout} layout) in the named sources table')


class ResolvedActivation(NamedTuple):
    """A tower's activation and where it came from (``source``: one of
    ``ACTIVATION_*``; ``evidence``: what the file or table says)."""
    name: str
    source: str
    evidence: str = ''

    def describe(self) -> str:
        """E.g. ``gelu (config.json of ... says hidden_act='gelu')``."""
        if self.source == ACTIVATION_GIVEN:
            how = 'as given'
        elif self.source == ACTIVATION_ASSUMED:
            how = ('assumed: neither the file nor the table of known files '
                   "says; set activation='gelu' if these weights were "
                   'trained with GELU (LAION, DataComp)')
        else:
            how = self.evidence
        return f'{self.name} ({how})'


def resolve_activation(given: Optional[str], stated: Optional[str],
                       evidence: str, path: Optional[str],
                       option: str = 'activation') -> ResolvedActivation:
    """A tower's activation: ``given`` (the option), else ``stated`` (by the
    file, ``evidence`` saying where), else :func:`table_activation`, else
    QuickGELU assumed.

    Raises:
        ValueError: ``given`` contradicts what the file states.
    """
    check_activation(given, path or '<state dict>', option)
    if given is not None:
        if stated is not None and stated != given:
            raise ValueError(
                f'{path}: {option}={given!r} was asked for, but the file '
                f'states {stated!r} ({evidence}); the weights fit either way '
                f'and would compute other features. Leave {option} out (the '
                f"file's is used) or give the file of the weights you mean")
        return ResolvedActivation(given, ACTIVATION_GIVEN)
    if stated is not None:
        return ResolvedActivation(stated, ACTIVATION_FROM_FILE, evidence)
    known = table_activation(path) if path else None
    if known is not None:
        return ResolvedActivation(known[0], ACTIVATION_FROM_TABLE, known[1])
    return ResolvedActivation(QUICK_GELU, ACTIVATION_ASSUMED)
