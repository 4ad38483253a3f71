"""--help says what each field means, its choices and its value under the chosen preset."""

import dataclasses
from typing import Literal

import pytest

from dreamlab.config import RunConfig, field_comments, parse_config


@dataclasses.dataclass
class ToyConfig(RunConfig):
    """A toy experiment."""

    steps: int = 100  # optimiser steps
    core: Literal["lstm", "dnc"] = "lstm"  # the recurrent core
    lr: float = 1e-3


PRESETS = {"smoke": {"steps": 3}, "fast": {}, "paper": {"steps": 5000, "core": "dnc"}}


def test_field_comments_come_from_the_class_and_its_bases():
    comments = field_comments(ToyConfig)
    assert comments["steps"] == "optimiser steps" and comments["core"] == "the recurrent core"
    assert "lr" not in comments
    assert comments["dtype"].startswith("float64")  # a RunConfig field


@pytest.mark.parametrize(("preset", "steps", "core"), [("fast", "100", "'lstm'"), ("paper", "5000", "'dnc'")])
def test_help_shows_meanings_choices_and_the_presets_values(capsys, preset, steps, core):
    with pytest.raises(SystemExit) as stopped:
        parse_config(ToyConfig, PRESETS, ["--preset", preset, "--help"])
    assert stopped.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert f"--steps STEPS optimiser steps ({preset}: {steps})" in text
    assert f"--core {{lstm,dnc}} the recurrent core ({preset}: {core})" in text
