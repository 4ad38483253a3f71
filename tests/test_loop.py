"""The shared training loop: it trains, resumes exactly after a kill, and stops on non-finite numbers."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest
import torch

from dreamlab.checkpoint import Checkpointer, CheckpointError
from dreamlab.loop import TrainingLoop
from dreamlab.runs import NonFiniteError


@dataclasses.dataclass
class Config:
    lr: float = 0.05
    steps: int = 40
    RESUMABLE_FIELDS = ("steps",)


class Killed(Exception):
    pass


def make_run(run_dir, steps=40, kill_at=None, lr=0.05):
    """A noisy linear regression whose batches come from a NumPy generator and torch's global generator."""
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    rng = np.random.default_rng(0)
    true_w = torch.tensor([[1.0, -2.0, 0.5]])
    loop = TrainingLoop(
        Checkpointer(run_dir, Config(lr=lr, steps=steps)),
        {"model": model, "optimizer": optimizer, "rng": rng},
        steps=steps,
        eval_every=5,
        desc="regression",
        checkpoint_seconds=0.0,  # save after every step, so a kill loses nothing
        check_modules={"model": model},
    )

    def step_fn(step: int) -> dict[str, float]:
        if step == kill_at:
            raise Killed
        x = torch.as_tensor(rng.standard_normal((16, 3)), dtype=torch.float32)
        y = x @ true_w.T + 0.01 * torch.randn(16, 1)
        loss = torch.nn.functional.mse_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return {"loss": loss.item()}

    return loop, model, step_fn


def test_it_learns_and_logs_a_row_every_eval_every(tmp_path):
    loop, model, step_fn = make_run(tmp_path, steps=100)
    curve = loop.run(step_fn, evaluate=lambda step: {"weight_norm": model.weight.norm().item()})
    assert [row["step"] for row in curve.rows] == list(range(5, 101, 5))
    losses = curve.column("loss")
    assert losses[-1] < 0.05 * losses[0]
    torch.testing.assert_close(model.weight.detach(), torch.tensor([[1.0, -2.0, 0.5]]), atol=0.02, rtol=0)
    assert all("seconds" in row and "weight_norm" in row for row in curve.rows)


def test_a_killed_run_resumes_exactly(tmp_path):
    reference, reference_model, reference_step = make_run(tmp_path / "whole")
    reference_curve = reference.run(reference_step)

    killed, _, killed_step = make_run(tmp_path / "killed", kill_at=23)
    with pytest.raises(Killed):
        killed.run(killed_step)
    torch.manual_seed(123)  # the process that resumes starts with other global draws: the checkpoint restores them
    resumed, resumed_model, resumed_step = make_run(tmp_path / "killed")
    assert resumed.step == 23
    curve = resumed.run(resumed_step)
    torch.testing.assert_close(resumed_model.weight, reference_model.weight, rtol=0, atol=0)
    assert [r["loss"] for r in curve.rows] == [r["loss"] for r in reference_curve.rows]


def test_a_budget_may_grow_on_resume(tmp_path):
    loop, _, step_fn = make_run(tmp_path, steps=10)
    loop.run(step_fn)
    longer, _, longer_step = make_run(tmp_path, steps=20)
    assert longer.step == 10 and not longer.finished
    assert longer.run(longer_step).rows[-1]["step"] == 20


def test_a_changed_config_is_refused(tmp_path):
    loop, _, step_fn = make_run(tmp_path, steps=10)
    loop.run(step_fn)
    with pytest.raises(Exception, match="lr"):
        make_run(tmp_path, steps=10, lr=0.1)


def test_a_non_finite_number_stops_the_run_naming_it(tmp_path):
    loop, _, _ = make_run(tmp_path)
    with pytest.raises(NonFiniteError, match=r"regression step 3: loss is nan"):
        loop.run(lambda step: {"loss": float("nan") if step == 2 else 1.0})


def test_a_broken_model_in_the_checkpoint_is_refused(tmp_path):
    loop, model, step_fn = make_run(tmp_path, steps=5)
    loop.run(step_fn)
    with torch.no_grad():
        model.weight.fill_(float("nan"))
    loop.save()
    with pytest.raises(NonFiniteError, match="weight"):
        make_run(tmp_path, steps=10)


def test_progress_lines_when_not_a_terminal(tmp_path, capsys):
    loop, _, step_fn = make_run(tmp_path, steps=10)
    loop.run(step_fn)
    err = capsys.readouterr().err
    assert "regression: 10/10 steps (100%)" in err


def test_checkpoint_every_saves_at_those_steps_and_a_kill_resumes_from_the_last(tmp_path):
    reference, reference_model, reference_step = make_run(tmp_path / "whole")
    reference.run(reference_step)
    killed, _, killed_step = make_run(tmp_path / "killed", kill_at=23)
    killed.checkpoint_seconds, killed.checkpoint_every = float("inf"), 10
    with pytest.raises(Killed):
        killed.run(killed_step)
    resumed, resumed_model, resumed_step = make_run(tmp_path / "killed")
    assert resumed.step == 20
    resumed.run(resumed_step)
    torch.testing.assert_close(resumed_model.weight, reference_model.weight, rtol=0, atol=0)


def test_a_time_limit_stops_checkpointed_and_a_larger_one_continues(tmp_path, capsys):
    loop, _, _ = make_run(tmp_path, steps=40)

    def slow_step(step: int) -> dict[str, float]:
        with loop.timer.stage("inner"):  # a stage of the trainer's own still counts as training time
            time.sleep(0.01)
        return {"loss": 1.0}

    loop.max_train_seconds = 0.05
    loop.run(slow_step)
    assert 5 <= loop.step < 40 and not loop.finished
    assert "stopping at step" in capsys.readouterr().out
    again, _, _ = make_run(tmp_path, steps=40)
    assert again.step == loop.step
    again.max_train_seconds = 100.0
    assert again.run(slow_step).rows[-1]["step"] == 40


def test_a_checkpoint_from_before_the_loop_is_refused_naming_what_it_lacks(tmp_path):
    """A run directory of an older dreamlab (its own checkpoint layout) stops with advice, not a KeyError."""
    loop, model, _ = make_run(tmp_path)
    loop.checkpointer.save({"model": model.state_dict(), "losses": {}, "step": 3})
    with pytest.raises(CheckpointError, match=r"lacks curve, optimizer, rng, timer, torch_rng, window.*--run_dir"):
        make_run(tmp_path)


def test_a_trainer_may_adopt_its_checkpoints_from_before_the_loop(tmp_path):
    """from_legacy: a checkpoint without the loop's bookkeeping is completed by the trainer's function and
    continued (timer from zero); one still lacking an object is refused, naming it."""
    loop, model, step_fn = make_run(tmp_path, steps=10)
    loop.run(step_fn)
    legacy = {name: value for name, value in loop.checkpointer.load().items() if name not in {"timer", "window"}}
    del legacy["torch_rng"]
    loop.checkpointer.save(legacy)

    def adopting(objects):
        return TrainingLoop(loop.checkpointer, objects, steps=20, eval_every=5, desc="regression", from_legacy=dict)

    adopted = adopting({"model": model, "optimizer": loop.objects["optimizer"], "rng": loop.objects["rng"]})
    assert adopted.step == 10 and adopted.timer.total == 0.0 and len(adopted.curve.rows) == 2
    with pytest.raises(CheckpointError, match="lacks.*timer"):  # without from_legacy it is refused
        make_run(tmp_path, steps=20)
    with pytest.raises(CheckpointError, match="lacks scheduler"):
        adopting({"model": model, "scheduler": torch.optim.lr_scheduler.StepLR(loop.objects["optimizer"], 1)})
