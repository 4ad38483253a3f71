"""Algorithmic sequence tasks for memory networks: copy and repeat copy (Graves et al. 2014, 2016).

Each generator returns a `SequenceBatch` of inputs (B, T, input_size), binary targets (B, T, target_size) and
a mask (B, T) that is 1 exactly at the time steps whose outputs are scored. Sequences of different lengths in
one batch are left-aligned and padded with zeros at the end (mask 0 there).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class SequenceBatch(NamedTuple):
    """One batch of a sequence task (batch first)."""

    inputs: Tensor  # (B, T, input_size)
    targets: Tensor  # (B, T, target_size), 0/1
    mask: Tensor  # (B, T), 1 where the output is scored

    def to(self, device: torch.device | str, dtype: torch.dtype) -> SequenceBatch:
        return SequenceBatch(*(t.to(device=device, dtype=dtype) for t in self))


def _check_lengths(min_length: int, max_length: int, what: str = "length") -> None:
    if not 1 <= min_length <= max_length:
        raise ValueError(f"need 1 <= min_{what} <= max_{what}, got {min_length} and {max_length}")


def _draw_lengths(batch_size: int, low: int, high: int, generator: torch.Generator | None) -> Tensor:
    return torch.randint(low, high + 1, (batch_size,), generator=generator)


def copy_input_size(bits: int) -> int:
    """Pattern bits plus one delimiter channel."""
    return bits + 1


def copy_task(
    batch_size: int, bits: int, min_length: int, max_length: int, generator: torch.Generator | None = None
) -> SequenceBatch:
    """Copy: read L random bit vectors and a delimiter, then output the same L vectors.

    Per sequence of length L: steps 0..L-1 carry the pattern on channels 0..bits-1, step L raises the
    delimiter channel `bits`, steps L+1..2L have zero input and the pattern as target. T = 2 max_length + 1.
    """
    _check_lengths(min_length, max_length)
    if bits < 1:
        raise ValueError(f"bits must be >= 1, got {bits}")
    steps = 2 * max_length + 1
    lengths = _draw_lengths(batch_size, min_length, max_length, generator)
    patterns = torch.randint(0, 2, (batch_size, max_length, bits), generator=generator).float()
    inputs = torch.zeros(batch_size, steps, copy_input_size(bits))
    targets = torch.zeros(batch_size, steps, bits)
    mask = torch.zeros(batch_size, steps)
    for b, length in enumerate(lengths.tolist()):
        inputs[b, :length, :bits] = patterns[b, :length]
        inputs[b, length, bits] = 1.0
        targets[b, length + 1 : 2 * length + 1] = patterns[b, :length]
        mask[b, length + 1 : 2 * length + 1] = 1.0
    return SequenceBatch(inputs, targets, mask)


def repeat_copy_input_size(bits: int) -> int:
    """Pattern bits, a delimiter channel and a channel holding the normalised number of repeats."""
    return bits + 2


def repeat_copy_task(
    batch_size: int,
    bits: int,
    min_length: int,
    max_length: int,
    min_repeats: int,
    max_repeats: int,
    generator: torch.Generator | None = None,
    repeat_norm: float | None = None,
) -> SequenceBatch:
    """Repeat copy: read L bit vectors, then a delimiter carrying n, then output the pattern n times and an
    end marker (Graves et al. 2014, sec. 4.3).

    Input channels: pattern (bits), delimiter, n / repeat_norm (repeat_norm defaults to max_repeats).
    Target channels: pattern (bits), end marker. Per sequence: steps 0..L-1 pattern, step L delimiter and n,
    steps L+1..L+nL the repeated pattern, step L+nL+1 the end marker. T = max_length (1 + max_repeats) + 2.
    """
    _check_lengths(min_length, max_length)
    _check_lengths(min_repeats, max_repeats, "repeats")
    if bits < 1:
        raise ValueError(f"bits must be >= 1, got {bits}")
    norm = float(max_repeats if repeat_norm is None else repeat_norm)
    steps = max_length * (1 + max_repeats) + 2
    lengths = _draw_lengths(batch_size, min_length, max_length, generator)
    repeats = _draw_lengths(batch_size, min_repeats, max_repeats, generator)
    patterns = torch.randint(0, 2, (batch_size, max_length, bits), generator=generator).float()
    inputs = torch.zeros(batch_size, steps, repeat_copy_input_size(bits))
    targets = torch.zeros(batch_size, steps, bits + 1)
    mask = torch.zeros(batch_size, steps)
    for b, (length, count) in enumerate(zip(lengths.tolist(), repeats.tolist(), strict=True)):
        inputs[b, :length, :bits] = patterns[b, :length]
        inputs[b, length, bits] = 1.0
        inputs[b, length, bits + 1] = count / norm
        start, end = length + 1, length + 1 + count * length
        targets[b, start:end, :bits] = patterns[b, :length].repeat(count, 1)
        targets[b, end, bits] = 1.0
        mask[b, start : end + 1] = 1.0
    return SequenceBatch(inputs, targets, mask)


def sequence_loss(logits: Tensor, batch: SequenceBatch) -> Tensor:
    """Bernoulli cross-entropy of the scored outputs, summed over time and bits, averaged over the batch."""
    if logits.shape != batch.targets.shape:
        raise ValueError(f"logits shape {tuple(logits.shape)} != targets shape {tuple(batch.targets.shape)}")
    cross_entropy = F.binary_cross_entropy_with_logits(logits, batch.targets, reduction="none")
    return (cross_entropy * batch.mask.unsqueeze(-1)).sum() / logits.shape[0]


def bit_errors(logits: Tensor, batch: SequenceBatch) -> Tensor:
    """Wrong bits per sequence (B,): outputs thresholded at probability 1/2, scored steps only."""
    if logits.shape != batch.targets.shape:
        raise ValueError(f"logits shape {tuple(logits.shape)} != targets shape {tuple(batch.targets.shape)}")
    wrong = (logits > 0) != (batch.targets > 0.5)
    return (wrong * batch.mask.unsqueeze(-1).bool()).sum(dim=(1, 2)).to(logits.dtype)


class LSTMSequenceModel(nn.Module):
    """The LSTM baseline for sequence tasks: nn.LSTM and a linear readout, `y, state = model(x, state)`."""

    def __init__(self, input_size: int, output_size: int, hidden_size: int, batch_first: bool = True) -> None:
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size, batch_first=batch_first)
        self.output = nn.Linear(hidden_size, output_size)

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        hidden, state = self.lstm(x, state)
        return self.output(hidden), state


def lstm_hidden_size_matching(parameter_count: int, input_size: int, output_size: int) -> int:
    """The hidden size H whose `LSTMSequenceModel` has the parameter count closest to parameter_count.

    An LSTM has 4H(I + H) + 8H weights and biases (torch keeps two bias vectors) plus H O + O for the readout.
    """

    def count(hidden: int) -> int:
        return 4 * hidden * (input_size + hidden) + 8 * hidden + hidden * output_size + output_size

    hidden = 1
    while count(hidden + 1) <= parameter_count:
        hidden += 1
    return min((hidden, hidden + 1), key=lambda h: abs(count(h) - parameter_count))


TASKS = ("copy", "repeat_copy")


def task_io_sizes(task: str, bits: int) -> tuple[int, int]:
    """(input_size, target_size) of a task by name."""
    if task == "copy":
        return copy_input_size(bits), bits
    if task == "repeat_copy":
        return repeat_copy_input_size(bits), bits + 1
    raise ValueError(f"unknown task {task!r}; choose from {list(TASKS)}")


def make_task_batch(
    task: str,
    batch_size: int,
    bits: int,
    min_length: int,
    max_length: int,
    generator: torch.Generator | None = None,
    min_repeats: int = 1,
    max_repeats: int = 1,
) -> SequenceBatch:
    """A batch of `copy_task` or `repeat_copy_task` by name (repeats are used by repeat_copy only)."""
    if task == "copy":
        return copy_task(batch_size, bits, min_length, max_length, generator)
    if task == "repeat_copy":
        return repeat_copy_task(batch_size, bits, min_length, max_length, min_repeats, max_repeats, generator)
    raise ValueError(f"unknown task {task!r}; choose from {list(TASKS)}")
