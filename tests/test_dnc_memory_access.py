"""Memory access of the DNC: erase/write, read modes, a full step against the paper's order of operations."""

import torch

from dreamlab.dnc.interface import Interface
from dreamlab.dnc.memory_access import MemoryAccess, erase_and_write, read_weighting


def test_erase_and_write():
    memory = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    write = torch.tensor([[1.0, 0.5]])
    erase = torch.tensor([[1.0, 0.0]])
    vector = torch.tensor([[10.0, 20.0]])
    # M o (1 - w e^T) + w v^T
    expected = torch.tensor([[[0.0 + 10.0, 2.0 + 20.0], [3.0 * 0.5 + 5.0, 4.0 + 10.0]]])
    torch.testing.assert_close(erase_and_write(memory, write, erase, vector), expected)


def test_read_weighting_mixes_backward_content_forward():
    modes = torch.tensor([[[1.0, 0.0, 0.0], [0.2, 0.3, 0.5]]])
    backward, content, forward = (torch.rand(1, 2, 4) for _ in range(3))
    out = read_weighting(modes, backward, content, forward)
    torch.testing.assert_close(out[:, 0], backward[:, 0])
    torch.testing.assert_close(out[:, 1], 0.2 * backward[:, 1] + 0.3 * content[:, 1] + 0.5 * forward[:, 1])


def make_interface(batch, slots, width, heads, **overrides):
    values = dict(
        read_keys=torch.zeros(batch, heads, width),
        read_strengths=torch.ones(batch, heads),
        write_key=torch.zeros(batch, 1, width),
        write_strength=torch.ones(batch, 1),
        erase_vector=torch.zeros(batch, width),
        write_vector=torch.zeros(batch, width),
        free_gates=torch.zeros(batch, heads),
        allocation_gate=torch.ones(batch, 1),
        write_gate=torch.ones(batch, 1),
        read_modes=torch.tensor([0.0, 1.0, 0.0]).expand(batch, heads, 3),
    )
    values.update(overrides)
    return Interface(**values)


def test_allocation_writes_fill_fresh_slots_and_content_reads_find_them():
    batch, slots, width, heads = 2, 4, 3, 1
    access = MemoryAccess(slots, width, heads)
    state = access.initial_state(batch, torch.device("cpu"), torch.float32)
    words = torch.eye(3) * 5
    written_slots = []
    for word in words:
        interface = make_interface(batch, slots, width, heads, write_vector=word.expand(batch, width))
        _, state = access(interface, state)
        written_slots.append(state.write_weights[0].argmax().item())
        assert state.write_weights[0].max() > 0.99
    assert len(set(written_slots)) == 3  # allocation never overwrote a used slot
    # Content read with a sharp key returns the stored word.
    interface = make_interface(
        batch,
        slots,
        width,
        heads,
        read_keys=words[1].expand(batch, heads, width),
        read_strengths=torch.full((batch, heads), 50.0),
        write_gate=torch.zeros(batch, 1),
    )
    reads, state = access(interface, state)
    torch.testing.assert_close(reads[:, 0], words[1].expand(batch, width), atol=1e-3, rtol=0)
    # u_t counts writes up to t-1, so by now all three written slots are in use.
    torch.testing.assert_close(state.usage[0, written_slots], torch.ones(3), atol=1e-4, rtol=0)


def test_forward_mode_follows_write_order():
    batch, slots, width, heads = 1, 5, 2, 1
    access = MemoryAccess(slots, width, heads)
    state = access.initial_state(batch, torch.device("cpu"), torch.float32)
    for i in range(4):
        word = torch.tensor([[float(i + 1), 1.0]])
        _, state = access(make_interface(batch, slots, width, heads, write_vector=word), state)
    first = (state.memory[0, :, 0] - 1.0).abs().argmin()  # the slot holding the first word
    # Point the read head at the first written slot, then step forward without writing.
    state = state._replace(read_weights=torch.nn.functional.one_hot(first, slots).float().view(1, 1, slots))
    forward_only = make_interface(
        batch, slots, width, heads, read_modes=torch.tensor([[[0.0, 0.0, 1.0]]]), write_gate=torch.zeros(1, 1)
    )
    reads = []
    for _ in range(3):
        read, state = access(forward_only, state)
        reads.append(read[0, 0, 0].item())
    assert [round(r) for r in reads] == [2, 3, 4]


def test_gradients_reach_every_interface_part():
    torch.manual_seed(0)
    batch, slots, width, heads = 2, 6, 4, 2
    access = MemoryAccess(slots, width, heads).double()
    state = access.initial_state(batch, torch.device("cpu"), torch.float64)
    raw = {
        "read_keys": torch.randn(batch, heads, width),
        "read_strengths": 1 + torch.rand(batch, heads),
        "write_key": torch.randn(batch, 1, width),
        "write_strength": 1 + torch.rand(batch, 1),
        "erase_vector": torch.rand(batch, width),
        "write_vector": torch.randn(batch, width),
        "free_gates": torch.rand(batch, heads),
        "allocation_gate": torch.rand(batch, 1),
        "write_gate": torch.rand(batch, 1),
        "read_modes": torch.softmax(torch.randn(batch, heads, 3), -1),
    }
    leaves = {k: v.double().requires_grad_() for k, v in raw.items()}
    loss = 0
    for _ in range(3):  # three steps so that links, usage and free gates all matter
        reads, state = access(Interface(**leaves), state)
        loss = loss + (reads * torch.arange(width, dtype=torch.float64)).sum()
    grads = torch.autograd.grad(loss, list(leaves.values()))
    for name, grad in zip(leaves, grads, strict=True):
        assert torch.isfinite(grad).all(), name
        assert grad.abs().sum() > 0, f"no gradient reaches {name}"


def test_full_access_step_passes_gradcheck():
    torch.manual_seed(1)
    batch, slots, width, heads = 2, 5, 3, 2
    access = MemoryAccess(slots, width, heads)
    state = access.initial_state(batch, torch.device("cpu"), torch.float64)
    memory = torch.randn(batch, slots, width, dtype=torch.float64)
    read_weights = torch.softmax(torch.randn(batch, heads, slots, dtype=torch.float64), -1)
    usage = torch.rand(batch, slots, dtype=torch.float64)
    write_weights = 0.5 * torch.softmax(torch.randn(batch, slots, dtype=torch.float64), -1)
    link = torch.rand(batch, slots, slots, dtype=torch.float64) / slots * (1 - torch.eye(slots, dtype=torch.float64))
    precedence = 0.5 * torch.softmax(torch.randn(batch, slots, dtype=torch.float64), -1)
    keys = torch.randn(batch, heads, width, dtype=torch.float64)
    write_vector = torch.randn(batch, width, dtype=torch.float64)

    def step(memory, read_weights, usage, write_weights, link, precedence, keys, write_vector):
        prev = state._replace(
            memory=memory,
            read_weights=read_weights,
            usage=usage,
            write_weights=write_weights,
            link=link,
            precedence=precedence,
        )
        interface = make_interface(batch, slots, width, heads).__class__(
            read_keys=keys,
            read_strengths=torch.full((batch, heads), 2.0, dtype=torch.float64),
            write_key=keys[:, :1],
            write_strength=torch.full((batch, 1), 1.5, dtype=torch.float64),
            erase_vector=torch.full((batch, width), 0.3, dtype=torch.float64),
            write_vector=write_vector,
            free_gates=torch.full((batch, heads), 0.4, dtype=torch.float64),
            allocation_gate=torch.full((batch, 1), 0.6, dtype=torch.float64),
            write_gate=torch.full((batch, 1), 0.9, dtype=torch.float64),
            read_modes=torch.tensor([0.2, 0.5, 0.3], dtype=torch.float64).expand(batch, heads, 3),
        )
        reads, new = access(interface, prev)
        return reads, new.memory, new.link, new.read_weights

    inputs = [
        t.requires_grad_() for t in (memory, read_weights, usage, write_weights, link, precedence, keys, write_vector)
    ]
    assert torch.autograd.gradcheck(step, inputs)
