"""The DNC module: API, shapes, layouts, stepping, traces, stability, gradients, dtypes and errors."""

import pytest
import torch

from dreamlab.dnc import DNC, DNCCell, DNCState, LSTMController
from dreamlab.dnc.state import ControllerState

SIZES = dict(input_size=5, output_size=3, hidden_size=16, memory_slots=8, word_size=4, read_heads=2)


def make_dnc(seed=0, **overrides):
    torch.manual_seed(seed)
    return DNC(**{**SIZES, **overrides})


def test_controller_matches_torch_lstm_cell():
    torch.manual_seed(0)
    controller = LSTMController(input_size=5, read_size=6, hidden_size=7)
    cell = torch.nn.LSTMCell(11, 7)
    with torch.no_grad():
        cell.weight_ih.copy_(torch.cat([controller.input_weight, controller.recurrent_weight[:, :6]], 1))
        cell.weight_hh.copy_(controller.recurrent_weight[:, 6:])
        cell.bias_ih.copy_(controller.bias)
        cell.bias_hh.zero_()
    x, reads = torch.randn(4, 5), torch.randn(4, 6)
    prev = ControllerState(torch.randn(4, 7), torch.randn(4, 7))
    ours = controller(controller.project_input(x), reads, prev)
    h, c = cell(torch.cat([x, reads], 1), (prev.h, prev.c))
    torch.testing.assert_close(ours.h, h)
    torch.testing.assert_close(ours.c, c)


def test_shapes_and_state_fields():
    dnc = make_dnc()
    x = torch.randn(3, 7, SIZES["input_size"])
    y, state = dnc(x)
    assert y.shape == (3, 7, 3)
    assert isinstance(state, DNCState)
    assert state.memory.shape == (3, 8, 4)
    assert state.read_vectors.shape == (3, 2, 4)
    assert state.read_weights.shape == (3, 2, 8)
    assert state.write_weights.shape == (3, 8)
    assert state.usage.shape == (3, 8)
    assert state.link.shape == (3, 8, 8)
    assert state.precedence.shape == (3, 8)
    assert state.controller.h.shape == (3, 16) and state.controller.c.shape == (3, 16)


def test_any_batch_size_and_time_major_layout():
    dnc = make_dnc()
    time_major = make_dnc(batch_first=False)
    time_major.load_state_dict(dnc.state_dict())
    for batch in (1, 5):
        x = torch.randn(batch, 6, SIZES["input_size"])
        y, state = dnc(x)
        y_t, state_t = time_major(x.transpose(0, 1))
        assert y_t.shape == (6, batch, 3)
        torch.testing.assert_close(y_t.transpose(0, 1), y)
        torch.testing.assert_close(state_t.memory, state.memory)


def test_continuing_from_a_state_equals_one_long_run():
    dnc = make_dnc()
    x = torch.randn(2, 10, SIZES["input_size"])
    y_full, state_full = dnc(x)
    y_first, state = dnc(x[:, :4])
    y_rest, state = dnc(x[:, 4:], state)
    torch.testing.assert_close(torch.cat([y_first, y_rest], 1), y_full)
    torch.testing.assert_close(state.memory, state_full.memory)


def test_cell_stepping_equals_the_unrolled_dnc():
    dnc = make_dnc()
    x = torch.randn(2, 5, SIZES["input_size"])
    y, final = dnc(x)
    cell: DNCCell = dnc.cell
    state = None
    for t in range(5):
        y_t, state = cell(x[:, t], state)
        torch.testing.assert_close(y_t, y[:, t])
    for ours, reference in zip(state, final, strict=True):
        torch.testing.assert_close(ours, reference)


@pytest.mark.parametrize("frozen", [None, "controller.recurrent_weight"])
def test_sequence_gradients_equal_those_of_stepping_the_cell(frozen):
    """DNC's weight gradients, one product per sequence (`deferred_weights`), equal autograd's per-step ones."""
    dnc = make_dnc().double()
    if frozen is not None:
        dnc.cell.get_parameter(frozen).requires_grad_(False)
    x = torch.randn(3, 6, SIZES["input_size"], dtype=torch.float64)
    target = torch.randn(3, 6, SIZES["output_size"], dtype=torch.float64)
    y, state = dnc(x)
    ((y - target).square().sum() + state.memory.sum()).backward()
    deferred = {name: p.grad.clone() for name, p in dnc.named_parameters() if p.requires_grad}
    dnc.zero_grad(set_to_none=True)
    outputs, state = [], None
    for t in range(x.shape[1]):
        y_t, state = dnc.cell(x[:, t], state)
        outputs.append(y_t)
    ((torch.stack(outputs, 1) - target).square().sum() + state.memory.sum()).backward()
    assert set(deferred) == {name for name, p in dnc.named_parameters() if p.grad is not None}
    for name, grad in deferred.items():
        torch.testing.assert_close(grad, dnc.get_parameter(name).grad, rtol=1e-10, atol=1e-12, msg=name)


def test_traces_hold_every_step_and_match_the_final_state():
    dnc = make_dnc()
    x = torch.randn(2, 6, SIZES["input_size"])
    y_plain, _ = dnc(x)
    y, state, trace = dnc.forward_traced(x, fields=("memory", "read_vectors", "controller", "link"))
    torch.testing.assert_close(y, y_plain)
    assert trace["memory"].shape == (2, 6, 8, 4)
    assert trace["read_vectors"].shape == (2, 6, 2, 4)
    assert trace["controller"].h.shape == (2, 6, 16)
    torch.testing.assert_close(trace["memory"][:, -1], state.memory)
    torch.testing.assert_close(trace["link"][:, -1], state.link)
    # Time-major traces for batch_first=False.
    time_major = make_dnc(batch_first=False)
    _, _, trace_t = time_major.forward_traced(x.transpose(0, 1), fields=("read_vectors",))
    assert trace_t["read_vectors"].shape == (6, 2, 2, 4)
    with pytest.raises(ValueError, match="unknown trace fields"):
        dnc.forward_traced(x, fields=("memroy",))


def assert_normalised(state: DNCState, slack: float = 1e-4):
    assert (state.read_weights >= -slack).all() and (state.read_weights.sum(-1) <= 1 + slack).all()
    assert (state.write_weights >= -slack).all() and (state.write_weights.sum(-1) <= 1 + slack).all()
    assert (state.usage >= -slack).all() and (state.usage <= 1 + slack).all()
    assert (state.precedence.sum(-1) <= 1 + slack).all()
    link = state.link if isinstance(state.link, torch.Tensor) else state.link.dense()
    assert (link >= -slack).all() and (link.sum(-1) <= 1 + slack).all() and (link.sum(-2) <= 1 + slack).all()


@pytest.mark.parametrize("sparse_links", [None, 3])
def test_long_sequences_stay_finite_and_normalised(sparse_links):
    dnc = make_dnc(sparse_links=sparse_links)
    x = 3 * torch.randn(2, 1000, SIZES["input_size"])
    with torch.no_grad():
        y, state = dnc(x)
    assert torch.isfinite(y).all()
    for part in (state.memory, state.read_vectors, state.controller.h, state.controller.c):
        assert torch.isfinite(part).all()
    assert_normalised(state)


def test_long_sequence_gradients_are_finite():
    dnc = make_dnc()
    x = torch.randn(2, 300, SIZES["input_size"])
    y, _ = dnc(x)
    y.square().mean().backward()
    for name, parameter in dnc.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name


def test_gradients_flow_through_keys_and_strengths():
    """Rows of the interface layer that produce read/write keys and strengths get non-zero gradients."""
    dnc = make_dnc()
    width, heads = SIZES["word_size"], SIZES["read_heads"]
    x = torch.randn(3, 6, SIZES["input_size"])
    y, _ = dnc(x)
    y.square().sum().backward()
    grad = dnc.cell.interface.linear.weight.grad.abs().sum(1)
    read_keys = grad[: heads * width]
    read_strengths = grad[heads * width : heads * width + heads]
    write_key = grad[heads * width + heads : heads * width + heads + width]
    write_strength = grad[heads * width + heads + width]
    for name, part in [("read keys", read_keys), ("read strengths", read_strengths), ("write key", write_key)]:
        assert (part > 0).all(), name
    assert write_strength > 0


@pytest.mark.parametrize("sparse_links", [None, 4])
def test_float64_and_sparse_variant_run_with_gradients(sparse_links):
    dnc = make_dnc(sparse_links=sparse_links).double()
    x = torch.randn(2, 5, SIZES["input_size"], dtype=torch.float64)
    y, state = dnc(x)
    assert y.dtype == torch.float64 and state.memory.dtype == torch.float64
    y.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in dnc.parameters())


def test_sparse_with_k_equal_n_matches_dense():
    dense = make_dnc()
    sparse = make_dnc(sparse_links=SIZES["memory_slots"])
    sparse.load_state_dict(dense.state_dict())
    x = torch.randn(2, 12, SIZES["input_size"])
    torch.testing.assert_close(sparse(x)[0], dense(x)[0], atol=1e-5, rtol=1e-4)


def test_detach_cuts_the_graph():
    dnc = make_dnc()
    _, state = dnc(torch.randn(2, 3, SIZES["input_size"]))
    detached = state.detach()
    assert isinstance(detached, DNCState) and isinstance(detached.controller, ControllerState)
    assert not detached.memory.requires_grad and state.memory.requires_grad


def test_bad_inputs_raise_clear_errors():
    dnc = make_dnc()
    with pytest.raises(ValueError, match="input_size=5"):
        dnc(torch.randn(2, 3, 4))
    with pytest.raises(ValueError, match="input_size=5"):
        dnc(torch.randn(2, 5))
    with pytest.raises(ValueError, match="dtype"):
        dnc(torch.randn(2, 3, 5, dtype=torch.float64))
    _, state = dnc(torch.randn(2, 3, 5))
    with pytest.raises(ValueError, match="state.memory has shape"):
        dnc(torch.randn(3, 3, 5), state)
    with pytest.raises(ValueError, match="DNCState"):
        dnc(torch.randn(2, 3, 5), (state.memory,))
    with pytest.raises(ValueError, match="memory_slots"):
        DNC(5, 3, 16, 0, 4, 2)
    with pytest.raises(ValueError, match="batch, 5"):
        dnc.cell(torch.randn(2, 3, 5))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_runs_on_cuda():
    dnc = make_dnc().cuda()
    y, state = dnc(torch.randn(2, 4, 5, device="cuda"))
    assert y.is_cuda and state.memory.is_cuda
