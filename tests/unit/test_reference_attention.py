"""Reference attention (pure part): the anchor's keys/values appended to every frame, and the strength blend."""

import pytest
import torch

from zizi_models.temporal.reference_attention import (
    heads_attention,
    reference_attention,
    reference_attention_per_window,
    with_reference,
)


def attention(q, k, v):
    """Single-head scaled dot-product attention on [B, N, D]."""
    return torch.softmax(q @ k.transpose(1, 2) / q.shape[-1] ** 0.5, dim=-1) @ v


def test_with_reference_appends_the_anchor_of_the_same_copy():
    frames, tokens = 3, 2
    x = torch.arange(2 * frames * tokens, dtype=torch.float32).reshape(2 * frames, tokens, 1)  # cond and uncond
    out = with_reference(x, frames, anchor=1)
    assert out.shape == (2 * frames, 2 * tokens, 1)
    for row in range(2 * frames):
        copy = row // frames
        assert torch.equal(out[row, :tokens], x[row])  # its own tokens first
        assert torch.equal(out[row, tokens:], x[copy * frames + 1])  # then the anchor of its own copy


def test_with_reference_refuses_a_bad_layout():
    with pytest.raises(ValueError, match="whole number"):
        with_reference(torch.zeros(5, 2, 1), 3, 0)
    with pytest.raises(ValueError, match="outside"):
        with_reference(torch.zeros(6, 2, 1), 3, 3)


def test_strength_zero_is_plain_attention_and_one_copies_from_the_anchor():
    torch.manual_seed(0)
    frames, tokens, dim = 4, 5, 8
    q, k, v = (torch.randn(frames, tokens, dim) for _ in range(3))
    assert torch.equal(reference_attention(q, k, v, frames, 0, 0.0, attention), attention(q, k, v))
    # a frame whose queries match one anchor key strongly takes that key's value from the anchor
    k[0, 2] = 40 * q[3, 0] / q[3, 0].norm()
    v[0, 2] = 7.0
    plain = attention(q, k, v)
    full = reference_attention(q, k, v, frames, 0, 1.0, attention)
    assert torch.allclose(full[3, 0], torch.full((dim,), 7.0), atol=1e-3)
    assert (plain[3, 0] - 7.0).abs().min() > 1.0  # without the reference it cannot
    # the anchor itself sees its own tokens twice: the same attention
    assert torch.allclose(full[0], plain[0], atol=1e-5)
    half = reference_attention(q, k, v, frames, 0, 0.5, attention)
    assert torch.allclose(half, (plain + full) / 2, atol=1e-5)


def test_heads_attention_is_attention_per_head():
    torch.manual_seed(1)
    q, k, v = (torch.randn(3, 5, 8) for _ in range(3))
    out = heads_attention(2)(q, k, v)
    for h in range(2):
        part = slice(4 * h, 4 * (h + 1))
        assert torch.allclose(out[..., part], attention(q[..., part], k[..., part], v[..., part]), atol=1e-5)


def test_per_window_anchors_each_window_on_its_own():
    torch.manual_seed(2)
    frames, tokens, dim = 3, 4, 6
    anchors = [0, None, 2]
    q, k, v = (torch.randn(len(anchors) * frames, tokens, dim) for _ in range(3))
    out = reference_attention_per_window(q, k, v, frames, anchors, attention)
    for window, anchor in enumerate(anchors):
        rows = slice(window * frames, (window + 1) * frames)
        alone = (attention(q[rows], k[rows], v[rows]) if anchor is None
                 else reference_attention(q[rows], k[rows], v[rows], frames, anchor, 1.0, attention))
        assert torch.allclose(out[rows], alone, atol=1e-6), window
    # one shared anchor: a single call, the same as the plain function
    same = reference_attention_per_window(q, k, v, frames, [1, 1, 1], attention)
    assert torch.equal(same, reference_attention(q, k, v, frames, 1, 1.0, attention))
    with pytest.raises(ValueError, match="not 2 windows"):
        reference_attention_per_window(q, k, v, frames, [0, 0], attention)


def test_per_window_gradients_reach_every_window():
    q, k, v = (torch.randn(6, 2, 4, requires_grad=True) for _ in range(3))
    reference_attention_per_window(q, k, v, 3, [None, 0], attention).sum().backward()
    assert all(t.grad is not None and bool((t.grad.abs().sum(dim=(1, 2)) > 0).all()) for t in (q, v))
