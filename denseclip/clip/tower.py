"""Base class of the CLIP towers: loading an OpenAI file on ``init_weights``."""
from typing import Optional

from mmengine.model import BaseModule

from .checkpoint import LoadReport, load_clip_tower
from .files import clip_file_for
from .weights_guard import configured_checkpoint
from .weights_guard import require_clip_weights as guard_random_weights


class CLIPTower(BaseModule):
    """A module whose weights may come from one tower of an OpenAI CLIP file.

    The file is given as ``pretrained='pretrained/RN50.pt'`` (the reference's
    way) or ``init_cfg=dict(type='Pretrained', checkpoint=...)`` (mmengine's
    way); either is read by :func:`denseclip.clip.checkpoint.load_clip_tower` when
    ``init_weights`` runs, which the runner does before training or testing.
    Without a file the tower keeps CLIP's own initialisation, done in the
    constructor.

    With ``require_clip_weights`` (MaskCLIP, which has no training to fix
    random weights) the tower refuses to run without them: its first forward
    reads ``pretrained`` if neither ``init_weights`` nor a loaded checkpoint
    gave the weights, and raises if there is no file
    (:mod:`denseclip.clip.weights_guard`).

    Subclasses set ``clip_tower`` to ``'visual'`` or ``'text'`` (and
    ``example_file``, for messages; ``heads_arg``, the argument that sets
    the attention heads, for the message when a file records others) and
    may define ``adapt_clip_state_dict``, ``is_clip_key`` and
    ``uses_clip_key`` (see :func:`load_clip_tower`). A tower whose
    transformer runs QuickGELU or GELU sets ``activation_arg`` (its option's
    name) and keeps the option as ``activation`` (None: from the file,
    :mod:`denseclip.clip.activation`).
    """

    clip_tower: str = ''
    example_file: str = 'pretrained/RN50.pt'
    heads_arg: Optional[str] = None
    activation_arg: Optional[str] = None
    activation: Optional[str] = None

    def __init__(self, pretrained: Optional[str] = None, init_cfg=None,
                 require_clip_weights: bool = False):
        if pretrained is not None and init_cfg is not None:
            raise ValueError(
                f'{type(self).__name__}: give the CLIP file either as '
                f'pretrained or as init_cfg, not both')
        if pretrained is not None and not isinstance(pretrained, str):
            raise TypeError(f'{type(self).__name__}: pretrained must be a '
                            f'path, got {type(pretrained).__name__}')
        super().__init__(init_cfg)
        self.pretrained = pretrained
        self.load_report: Optional[LoadReport] = None
        if require_clip_weights:
            guard_random_weights(
                self, f"Give the OpenAI CLIP file as the model's pretrained "
                f"(e.g. model.pretrained='{self.example_file}', which mmseg's "
                f"EncoderDecoder passes to the backbone) or "
                f"backbone.pretrained, or load a whole checkpoint of this "
                f"model (load_from=, tools/test.py CONFIG CHECKPOINT).")

    def use_activation(self, name: str) -> None:
        """Run ``name`` (``'quick_gelu'`` or ``'gelu'``) in the transformer's
        blocks; :func:`load_clip_tower` calls it with the resolved one."""
        self.transformer.set_activation(name)

    @property
    def clip_checkpoint(self) -> Optional[str]:
        """The CLIP file this tower loads on ``init_weights``, if any."""
        return configured_checkpoint(self.pretrained, self.init_cfg)

    def init_weights(self) -> None:
        checkpoint = self.clip_checkpoint
        if checkpoint is None:
            super().init_weights()
            return
        # a path, a table name or hf-hub:ORG/REPO (denseclip/clip/files.py)
        self.load_report = load_clip_tower(self, clip_file_for(checkpoint), self.clip_tower)
        self._is_init = True
