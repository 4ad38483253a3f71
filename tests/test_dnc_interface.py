"""Interface vector split and activations of the DNC."""

import pytest
import torch

from dreamlab.dnc.interface import InterfaceLayer, interface_size, split_interface


def test_interface_size_matches_the_paper():
    # W R + 3 W + 5 R + 3
    assert interface_size(word_size=64, read_heads=4) == 64 * 4 + 3 * 64 + 5 * 4 + 3


def test_split_shapes_ranges_and_order():
    batch, width, heads = 5, 6, 3
    raw = torch.randn(batch, interface_size(width, heads)) * 5
    parts = split_interface(raw, width, heads)
    assert parts.read_keys.shape == (batch, heads, width)
    assert parts.write_key.shape == (batch, 1, width)
    assert parts.read_modes.shape == (batch, heads, 3)
    assert torch.all(parts.read_strengths >= 1) and torch.all(parts.write_strength >= 1)
    for gate in (parts.erase_vector, parts.free_gates, parts.allocation_gate, parts.write_gate):
        assert torch.all((gate > 0) & (gate < 1))
    torch.testing.assert_close(parts.read_modes.sum(-1), torch.ones(batch, heads))
    # The paper's order: [k^r; beta^r; k^w; beta^w; e; v; f; g^a; g^w; pi]; keys and v are unactivated.
    torch.testing.assert_close(parts.read_keys.flatten(1), raw[:, : heads * width])
    start = heads * width + heads
    torch.testing.assert_close(parts.write_key.squeeze(1), raw[:, start : start + width])
    start += 2 * width + 1
    torch.testing.assert_close(parts.write_vector, raw[:, start : start + width])
    torch.testing.assert_close(parts.write_gate.squeeze(1), torch.sigmoid(raw[:, start + width + heads + 1]))


def test_wrong_interface_size_is_a_clear_error():
    with pytest.raises(ValueError, match="interface vector has size"):
        split_interface(torch.zeros(2, 10), word_size=4, read_heads=2)


def test_interface_layer_output():
    layer = InterfaceLayer(hidden_size=8, word_size=4, read_heads=2)
    parts = layer(torch.randn(3, 8))
    assert parts.read_keys.shape == (3, 2, 4)
