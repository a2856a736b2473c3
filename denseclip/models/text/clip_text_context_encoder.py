"""DenseCLIP's text encoder with learnable contexts (context-aware prompting)."""
import torch
from mmseg.registry import MODELS
from torch import Tensor

from ...clip.text_tower import CLIPTextTower


@MODELS.register_module()
class CLIPTextContextEncoder(CLIPTextTower):
    """CLIP's text tower fed ``[sot, ctx_1..ctx_N, name tokens..., eot]``.

    The learnable contexts replace the prompt words: they are inserted after
    the start token of every class name, and the output is read at the
    end-of-text token, which moves ``N`` positions to the right.

    ``context_length`` is the full token length (contexts plus name tokens);
    DenseCLIP uses 13 = 8 contexts + 5 name tokens.
    """

    def __init__(self, context_length: int = 22, **kwargs):
        super().__init__(context_length=context_length, **kwargs)

    def forward(self, text: Tensor, context: Tensor) -> Tensor:
        """Encode class names with contexts.

        Args:
            text: name tokens ``[K, L_name]`` (start, name, end, padding).
            context: learnable contexts ``[B, N, C]`` (``B`` is 1 for
                contexts shared by all images).

        Returns:
            Tensor: text features ``[B, K, embed_dim]``.
        """
        K, name_length = text.shape
        B, N, C = context.shape
        if name_length + N != self.context_length:
            raise ValueError(
                f'{type(self).__name__}: {name_length} name tokens + {N} '
                f'contexts != context_length {self.context_length}')
        tokens = self.token_embedding(text)  # K, L, C
        tokens = tokens.unsqueeze(0).expand(B, K, name_length, C)
        context = context.unsqueeze(1).expand(B, K, N, C).to(tokens.dtype)
        # [sot] + contexts + [name..., eot, padding...]
        x = torch.cat([tokens[:, :, :1], context, tokens[:, :, 1:]], dim=2)
        x = x.reshape(B * K, -1, C)
        eot_index = (text.argmax(dim=-1) + N).repeat(B)
        return self.encode(x, eot_index).reshape(B, K, -1)

