"""Issue 21: every experiment script refuses a bad run before any work, in one line with exit code 2, and stops on
a checkpoint holding NaN weights naming the file.

Each script's ``main`` is called with one mistake: a zero batch or budget, an unknown choice, a non-finite number,
a results folder that cannot exist (under a regular file), or a run directory another process holds. Nothing is
patched: validation and the run-directory checks come first, so each refusal takes well under a second of work.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import re
import time
import typing
from pathlib import Path

import pytest
import torch
from experiment_scripts import load_experiment

from dreamlab.checkpoint import load_checkpoint, save_checkpoint
from dreamlab.config import make_config
from dreamlab.runs import RunLock, UserError

# Per script: a zero batch (or its equivalent), an unknown choice, a float field, and a zero budget.
SCRIPTS = {
    "sncgan": {"zero": ("--batch_size", "0"), "choice": ("--variant", "stylegan"), "float": "--lr"},
    "colorize": {"zero": ("--batch_size", "0"), "choice": ("--data", "photos"), "float": "--lr"},
    "draw": {"zero": ("--batch_size", "0"), "choice": ("--model", "gan"), "float": "--lr"},
    "rnd_pixelcopter": {
        "zero": ("--num_envs", "0"),
        "choice": ("--eval_policy", "argmax"),
        "float": "--learning_rate",
        "budget": "--total_env_steps",
    },
    "dnc_copy": {"zero": ("--batch_size", "0"), "choice": ("--task", "sort"), "float": "--lr"},
    "dnc_dsprites": {"zero": ("--batch_size", "0"), "choice": ("--model", "C"), "float": "--lr", "budget": "--epochs"},
    "mdn_toy": {"zero": ("--batch_size", "0"), "choice": ("--dtype", "float16"), "float": "--lr"},
    "pommerman_next_state": {"zero": ("--batch_size", "0"), "choice": ("--core", "gru"), "float": "--lr"},
}


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Nothing a script might default to (runs/, datasets) lands outside the test's folder; threads restored."""
    monkeypatch.chdir(tmp_path)
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def base_args(name: str, tmp_path: Path) -> list[str]:
    args = ["--preset", "smoke", "--threads", "1", "--run_dir", str(tmp_path / "run")]
    args += ["--results_dir", str(tmp_path / "results")]
    if name == "pommerman_next_state":
        args += ["--data_dir", str(tmp_path / "data")]
    return args


def refused(name: str, args: list[str], capsys) -> str:
    """Run the script, expect exit code 2 within seconds, and return its one error line."""
    main = load_experiment(name).main
    started = time.perf_counter()
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    elapsed = time.perf_counter() - started
    assert exit_info.value.code == 2
    assert elapsed < 10, f"{name} took {elapsed:.1f}s to refuse: validation must come before the work"
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error")]
    assert len(errors) == 1, errors
    return errors[0]


def mistakes(name: str, tmp_path: Path) -> dict[str, tuple[list[str], str]]:
    """The bad arguments of each fault and a pattern the error line must contain."""
    spec = SCRIPTS[name]
    flag, value = spec["zero"]
    (tmp_path / "blocker").write_text("a regular file, not a folder")
    return {
        "zero": ([flag, value], re.escape(flag)),
        "choice": (list(spec["choice"]), re.escape(spec["choice"][0])),
        "nan": ([spec["float"], "nan"], re.escape(spec["float"]) + ".*finite"),
        "inf": ([spec["float"], "inf"], re.escape(spec["float"]) + ".*finite"),
        "negative": ([spec["float"], "-1"], re.escape(spec["float"])),
        "budget": ([spec.get("budget", "--steps"), "0"], re.escape(spec.get("budget", "--steps"))),
        "results_under_a_file": (["--results_dir", str(tmp_path / "blocker" / "results")], "blocker.*not writable"),
    }


FAULTS = ("zero", "choice", "nan", "inf", "negative", "budget", "results_under_a_file")


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_a_bad_argument_is_refused_in_one_line_before_any_work(name, fault, tmp_path, capsys):
    extra, pattern = mistakes(name, tmp_path)[fault]
    line = refused(name, [*base_args(name, tmp_path), *extra], capsys)
    assert re.search(pattern, line), line
    assert not (tmp_path / "run").exists()  # refused before the run directory was even created
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_a_second_run_on_a_held_run_directory_stops_at_once_naming_the_holder(name, tmp_path, capsys):
    """Issue 21: second GAN/RND copies resumed from the first's checkpoint while it was still writing."""
    with RunLock(tmp_path / "run"):
        line = refused(name, base_args(name, tmp_path), capsys)
    assert re.search(rf"in use by pid {os.getpid()}", line), line
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


# Per script: extra arguments of a one-step run, and where its checkpoint keeps one model's weights.
RESUMABLE = {
    "draw": (["--steps", "1"], ["--steps", "2"], ("state", "model")),
    "colorize": (["--steps", "1"], ["--steps", "2"], ("state", "trainer", "generator")),
    "dnc_copy": (["--steps", "1"], ["--steps", "2"], ("state", "dnc")),
    "rnd_pixelcopter": (
        ["--total_env_steps", "65", "--eval_episodes", "1", "--eval_max_episode_steps", "10"],
        ["--total_env_steps", "300", "--eval_episodes", "1", "--eval_max_episode_steps", "10"],
        ("state", "agent", "policy"),
    ),
}


@pytest.mark.parametrize("name", sorted(RESUMABLE))
def test_a_checkpoint_with_nan_weights_is_refused_naming_the_file(name, tmp_path, capsys):
    first, again, keys = RESUMABLE[name]
    main = load_experiment(name).main
    main([*base_args(name, tmp_path), *first])
    path = tmp_path / "run" / "checkpoint.pt"
    saved = load_checkpoint(path)
    weights = saved
    for key in keys:
        weights = weights[key]
    next(tensor for tensor in weights.values() if tensor.is_floating_point()).fill_(float("nan"))
    save_checkpoint(path, saved)
    with pytest.raises(SystemExit) as stopped:
        main([*base_args(name, tmp_path), *again])
    assert stopped.value.code == 1  # stopped by non-finite numbers: one line naming the file, no traceback
    assert str(path) in capsys.readouterr().err


# Per script: the package module holding its config class and presets.
CONFIGS = {
    "sncgan": ("dreamlab.gan.study", "SNcGANConfig"),
    "colorize": ("dreamlab.gan.colorize_study", "ColorizeConfig"),
    "draw": ("dreamlab.draw.study", "DrawConfig"),
    "rnd_pixelcopter": ("dreamlab.rnd.config", "RNDConfig"),
    "dnc_copy": ("dreamlab.dnc.copy_study", "DNCCopyConfig"),
    "dnc_dsprites": ("dreamlab.dnc.memory_study", "DNCSpritesConfig"),
    "mdn_toy": ("dreamlab.mdn.toy", "MDNToyConfig"),
    "pommerman_next_state": ("dreamlab.envs.pommerman.next_state_study", "NextStateConfig"),
}


def numeric_fields(cls: type) -> list[tuple[str, type]]:
    """(name, int or float) of every numeric field, Optional ones included."""
    fields = []
    for name, annotation in typing.get_type_hints(cls).items():
        if name in {f.name for f in dataclasses.fields(cls)}:
            options = (annotation,) if typing.get_origin(annotation) is tuple else typing.get_args(annotation)
            kinds = [a for a in (options or (annotation,)) if a in (int, float)]
            if kinds:
                fields.append((name, kinds[0]))
    return fields


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_numeric_field_refuses_a_negative_value_by_name(name):
    module_name, class_name = CONFIGS[name]
    module = importlib.import_module(module_name)
    cls = getattr(module, class_name)
    fields = numeric_fields(cls)
    assert len(fields) > 5
    for field, kind in fields:
        with pytest.raises(UserError, match=re.escape(f"--{field}")):
            make_config(cls, module.PRESETS, "smoke", **{field: kind(-1)})
