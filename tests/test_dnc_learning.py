"""The DNC actually learns: copy of up to 3 four-bit vectors, from chance to under one wrong bit, in 400 steps."""

import torch

from dreamlab.dnc import DNC
from dreamlab.dnc.tasks import bit_errors, copy_task, sequence_loss


def test_dnc_learns_short_copy():
    torch.manual_seed(1)
    generator = torch.Generator().manual_seed(1)
    dnc = DNC(input_size=5, output_size=4, hidden_size=64, memory_slots=8, word_size=8, read_heads=1)
    optimizer = torch.optim.Adam(dnc.parameters(), lr=2e-2)
    test = copy_task(100, bits=4, min_length=3, max_length=3, generator=torch.Generator().manual_seed(99))
    with torch.no_grad():
        before = bit_errors(dnc(test.inputs)[0], test).mean().item()
    for _ in range(400):
        batch = copy_task(32, bits=4, min_length=1, max_length=3, generator=generator)
        loss = sequence_loss(dnc(batch.inputs)[0], batch)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(dnc.parameters(), 10.0)
        optimizer.step()
    with torch.no_grad():
        after = bit_errors(dnc(test.inputs)[0], test).mean().item()
    assert before > 4.0  # 12 scored bits, about half wrong at chance
    assert after < 1.0, f"copy not learned: {after:.2f} wrong bits per sequence (was {before:.2f})"


def test_copy_study_resumed_midway_matches_one_uninterrupted_run(tmp_path):
    """The loop checkpoints both models, their optimisers and the data generator: 2 steps then a resumed 2 more
    train exactly as 4 in one go (a constant learning rate, since the cosine schedule depends on the step budget)."""
    from dreamlab.config import make_config
    from dreamlab.dnc.copy_study import PRESETS, DNCCopyConfig, run

    def losses(run_dir, *budgets):
        for steps in budgets:
            config = make_config(
                DNCCopyConfig, PRESETS, "smoke", steps=steps, final_lr_fraction=1.0, threads=1,
                run_dir=str(run_dir), results_dir=str(tmp_path / "results"),
            )  # fmt: skip
            metrics = run(config)
        rows = (tmp_path / "results/dnc/copy_generalisation_smoke_curves.csv").read_text().splitlines()
        columns = rows[0].split(",")
        kept = [columns.index(c) for c in ("step", "dnc_train_loss", "lstm_train_loss")]
        return [[row.split(",")[i] for i in kept] for row in rows[1:]], metrics

    straight, straight_metrics = losses(tmp_path / "straight", 4)
    resumed, resumed_metrics = losses(tmp_path / "resumed", 2, 4)
    assert len(straight) == 4 and resumed == straight
    assert resumed_metrics["bit_error_at_2x_length"] == straight_metrics["bit_error_at_2x_length"]
