"""experiments/cmaes_schaffer.py (dreamlab.cmaes.schaffer_study): a killed run resumes from its checkpoint to the
uninterrupted result; bad flags of it and of experiments/cmaes_benchmark.py fail fast with one line and exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from experiment_scripts import load_experiment

from dreamlab.checkpoint import Checkpointer


def schaffer_main():
    return load_experiment("cmaes_schaffer").main


def smoke(tmp_path: Path, label: str, *extra: str) -> list[str]:
    return [
        "--preset",
        "smoke",
        "--results_dir",
        str(tmp_path / label),
        "--run_dir",
        str(tmp_path / f"run_{label}"),
        *extra,
    ]


class Killed(BaseException):
    """Stands for SIGKILL: not an Exception, so nothing in the run catches it."""


@pytest.mark.parametrize("saves_before_kill", [3, 11])  # in the animated run; in the success-rate runs
def test_a_killed_run_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch, saves_before_kill):
    reference = schaffer_main()(smoke(tmp_path, "whole"))

    save, count = Checkpointer.save, []

    def save_then_die(self, state):
        path = save(self, state)
        count.append(path)
        if len(count) == saves_before_kill:
            raise Killed
        return path

    monkeypatch.setattr(Checkpointer, "save", save_then_die)
    with pytest.raises(Killed):
        schaffer_main()(smoke(tmp_path, "killed"))
    monkeypatch.setattr(Checkpointer, "save", save)
    assert not (tmp_path / "killed" / "cmaes" / "schaffer_smoke.json").exists()

    resumed = schaffer_main()(smoke(tmp_path, "killed"))
    assert resumed == reference
    for suffix in ("csv", "gif"):
        whole = (tmp_path / "whole" / "cmaes" / f"schaffer_smoke.{suffix}").read_bytes()
        assert (tmp_path / "killed" / "cmaes" / f"schaffer_smoke.{suffix}").read_bytes() == whole, suffix


def test_resuming_with_another_config_is_refused(tmp_path, capsys):
    schaffer_main()(smoke(tmp_path, "a", "--success_seeds", "0"))
    with pytest.raises(SystemExit) as exit_info:
        schaffer_main()(smoke(tmp_path, "a", "--success_seeds", "0", "--sigma0", "0.5"))
    assert exit_info.value.code == 2
    assert "sigma0: 0.3 -> 0.5" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--mu", "0"], "--mu must be in"),
        (["--popsize", "1"], "--popsize must be >= 2"),
        (["--sigma0", "-1"], "--sigma0 must be positive"),
        (["--popsize", "3", "--mu", "0.2"], "leaves no parent"),
    ],
)
def test_bad_flags_fail_fast_with_one_line(tmp_path, capsys, flags, message):
    with pytest.raises(SystemExit) as exit_info:
        schaffer_main()(smoke(tmp_path, "bad", *flags))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "run_bad").exists()  # refused before any work


@pytest.mark.parametrize(
    ("flags", "message"),
    [(["--dim", "1"], "--dim must be >= 2"), (["--seeds", "0"], "--seeds must be positive")],
)
def test_benchmark_bad_flags_fail_fast_with_one_line(tmp_path, capsys, flags, message):
    main = load_experiment("cmaes_benchmark").main
    with pytest.raises(SystemExit) as exit_info:
        main(["--preset", "smoke", "--results_dir", str(tmp_path), *flags])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
