"""Copy and repeat-copy generators, loss and bit error, and the parameter-matched LSTM baseline."""

import pytest
import torch

from dreamlab.dnc.tasks import (
    LSTMSequenceModel,
    SequenceBatch,
    bit_errors,
    copy_task,
    lstm_hidden_size_matching,
    make_task_batch,
    repeat_copy_task,
    sequence_loss,
    task_io_sizes,
)


def test_copy_layout():
    generator = torch.Generator().manual_seed(0)
    batch = copy_task(16, bits=5, min_length=2, max_length=6, generator=generator)
    assert batch.inputs.shape == (16, 13, 6) and batch.targets.shape == (16, 13, 5) and batch.mask.shape == (16, 13)
    for b in range(16):
        length = int(batch.mask[b].sum().item())
        assert 2 <= length <= 6
        # Pattern, then the delimiter, then the same pattern as target where the mask is on.
        assert batch.inputs[b, length, 5] == 1 and batch.inputs[b, :, 5].sum() == 1
        torch.testing.assert_close(batch.targets[b, length + 1 : 2 * length + 1], batch.inputs[b, :length, :5])
        assert batch.mask[b, length + 1 : 2 * length + 1].all() and batch.inputs[b, length + 1 :].abs().sum() == 0
    assert set(batch.inputs[..., :5].unique().tolist()) == {0.0, 1.0}


def test_repeat_copy_layout():
    generator = torch.Generator().manual_seed(1)
    batch = repeat_copy_task(8, bits=3, min_length=2, max_length=4, min_repeats=1, max_repeats=3, generator=generator)
    assert batch.inputs.shape == (8, 4 * 4 + 2, 5) and batch.targets.shape == (8, 18, 4)
    for b in range(8):
        length = int(batch.inputs[b, :, 3].argmax().item())
        repeats = round(batch.inputs[b, length, 4].item() * 3)
        assert 2 <= length <= 4 and 1 <= repeats <= 3
        pattern = batch.inputs[b, :length, :3]
        start, end = length + 1, length + 1 + repeats * length
        torch.testing.assert_close(batch.targets[b, start:end, :3], pattern.repeat(repeats, 1))
        assert batch.targets[b, end, 3] == 1 and batch.targets[b, :, 3].sum() == 1
        assert batch.mask[b].sum() == repeats * length + 1


def test_bit_errors_and_loss_count_only_scored_steps():
    batch = copy_task(4, bits=3, min_length=2, max_length=2, generator=torch.Generator().manual_seed(2))
    perfect = (batch.targets * 2 - 1) * 20  # logits of the right sign
    assert bit_errors(perfect, batch).sum() == 0
    assert sequence_loss(perfect, batch) < 1e-6
    # Flip one scored bit in sequence 0 and garble every unscored step: only the scored flip counts.
    wrong = perfect.clone()
    wrong[0, 3, 1] *= -1
    wrong[:, :3] = torch.randn_like(wrong[:, :3])
    torch.testing.assert_close(bit_errors(wrong, batch), torch.tensor([1.0, 0.0, 0.0, 0.0]))
    chance = torch.zeros_like(batch.targets)
    torch.testing.assert_close(sequence_loss(chance, batch), torch.tensor(2 * 3 * torch.log(torch.tensor(2.0)).item()))


def test_generators_are_reproducible_and_validate_arguments():
    first = make_task_batch("copy", 3, 4, 1, 5, torch.Generator().manual_seed(7))
    second = make_task_batch("copy", 3, 4, 1, 5, torch.Generator().manual_seed(7))
    for a, b in zip(first, second, strict=True):
        torch.testing.assert_close(a, b)
    assert isinstance(first, SequenceBatch)
    with pytest.raises(ValueError, match="unknown task"):
        make_task_batch("sort", 3, 4, 1, 5)
    with pytest.raises(ValueError, match="min_length"):
        copy_task(3, 4, 5, 2)
    with pytest.raises(ValueError, match="min_repeats"):
        repeat_copy_task(3, 4, 1, 2, 3, 1)
    assert task_io_sizes("repeat_copy", 6) == (8, 7)


def test_lstm_baseline_matches_a_parameter_budget():
    hidden = lstm_hidden_size_matching(20_000, input_size=7, output_size=6)
    model = LSTMSequenceModel(7, 6, hidden)
    count = sum(p.numel() for p in model.parameters())
    neighbours = [sum(p.numel() for p in LSTMSequenceModel(7, 6, h).parameters()) for h in (hidden - 1, hidden + 1)]
    assert all(abs(count - 20_000) <= abs(n - 20_000) for n in neighbours)
    y, _ = model(torch.randn(2, 5, 7))
    assert y.shape == (2, 5, 6)
