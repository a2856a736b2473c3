"""The [sot] + contexts prefix run once: DenseCLIP's text features and the
contexts' gradient as the full per-class sequences give them."""
import pytest
import torch
from conftest import text_cfg, tiny_denseclip_cfg
from denseclip_helpers import make_samples
from mmseg.registry import MODELS

from denseclip.models.text.shared_prefix_encoding import \
    encode_with_shared_prefix
from denseclip.clip.tokenizer import tokenize

NAMES = ['sky', 'a red car', 'tree', 'traffic light', 'road']


@pytest.mark.parametrize('num_context_sets', [1, 3])
def test_equal_features_and_context_gradients(rn_clip, num_context_sets):
    """1 context set (post-model prompting), 3 (pre-model: one per image)."""
    encoder = MODELS.build(text_cfg(rn_clip.shape,
                                    type='CLIPTextContextEncoder',
                                    context_length=13))
    encoder.requires_grad_(False)  # frozen, as DenseCLIP trains it
    texts = tokenize(NAMES, 5)
    gen = torch.Generator().manual_seed(0)
    contexts = torch.randn(num_context_sets, 8, encoder.transformer.width,
                           generator=gen, requires_grad=True)
    weights = torch.randn(num_context_sets, len(NAMES), rn_clip.shape[
        'embed_dim'], generator=gen)
    outs, grads = [], []
    for fn in (encoder, lambda t, c: encode_with_shared_prefix(encoder, t,
                                                                c)):
        out = fn(texts, contexts)
        outs.append(out)
        grads.append(torch.autograd.grad((out * weights).sum(), contexts)[0])
    assert outs[1].shape == (num_context_sets, len(NAMES),
                             rn_clip.shape['embed_dim'])
    torch.testing.assert_close(outs[1], outs[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-4,
                               atol=1e-5 * float(grads[0].abs().max()))


def test_hooked_or_other_encoders_are_called_as_they_are(rn_clip):
    encoder = MODELS.build(text_cfg(rn_clip.shape,
                                    type='CLIPTextContextEncoder',
                                    context_length=13))
    calls = []
    encoder.register_forward_pre_hook(lambda *args: calls.append(1))
    encode_with_shared_prefix(encoder, tokenize(NAMES, 5),
                              torch.randn(1, 8, encoder.transformer.width))
    assert calls == [1]
    with pytest.raises(ValueError, match='context_length 13'):
        encode_with_shared_prefix(encoder, tokenize(NAMES, 6),
                                  torch.randn(1, 8, encoder.transformer.width))


def test_denseclip_uses_it_and_trains_alike(rn_clip, monkeypatch):
    """A training step's losses and the contexts' gradient with and without
    the shared prefix (DenseCLIP's share_text_prefix); with it, the per-class
    forward of the text encoder does not run."""
    cfg = tiny_denseclip_cfg(rn_clip.shape)
    cfg.context_decoder.dropout = 0.
    cfg.decode_head.dropout_ratio = 0.
    model = MODELS.build(cfg).train()
    assert model.share_text_prefix
    calls = []
    full_forward = type(model.text_encoder).forward
    monkeypatch.setattr(type(model.text_encoder), 'forward',
                        lambda *a: calls.append(1) or full_forward(*a))
    inputs = torch.randn(2, 3, 64, 64)
    samples = make_samples(2, 64, 64, num_classes=4)
    results = []
    for share in (False, True):
        model.share_text_prefix = share
        losses = model.loss(inputs, samples)
        loss = sum(v for k, v in losses.items() if 'loss' in k)
        results.append((loss, torch.autograd.grad(loss, model.contexts)[0]))
    assert calls == [1]  # share_text_prefix=False only
    torch.testing.assert_close(results[1][0], results[0][0], rtol=1e-5,
                               atol=1e-6)
    torch.testing.assert_close(results[1][1], results[0][1], rtol=1e-4,
                               atol=1e-5 * float(results[0][1].abs().max()))
