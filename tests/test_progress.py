"""Progress of a training loop: a bar on a terminal, plain periodic lines in a log, TensorBoard curves."""

import dataclasses
import importlib.util
import io

import pytest

from dreamlab.config import RunConfig, make_config
from dreamlab.progress import MetricsWriter, Progress, tensorboard_dir, track
from dreamlab.results import CurveLog
from dreamlab.runs import UserError


@dataclasses.dataclass
class ToyConfig(RunConfig):
    width: int = 8


PRESETS = {"smoke": {"width": 2}, "fast": {}, "paper": {"width": 64}}


def test_a_log_gets_plain_lines_with_rate_time_left_and_latest_values():
    stream = io.StringIO()  # not a terminal: no bar
    with Progress(100, "M", initial=20, every_seconds=0.0, stream=stream) as progress:
        progress.update(40, loss=0.5, nll=1.25, env_steps=10496.0)
        progress.update(60, loss=0.25)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and "\r" not in stream.getvalue()
    assert lines[0].startswith("M: 40/100 steps (40%), ")
    assert lines[0].endswith("left; loss 0.5, nll 1.25, env_steps 10496")  # counters print as integers
    assert lines[1].startswith("M: 60/100 steps (60%)") and "steps/s" in lines[1]


def test_lines_are_periodic_and_the_last_position_is_always_written():
    stream = io.StringIO()
    with Progress(None, "C", unit="generation", every_seconds=3600.0, stream=stream) as progress:
        for generation in range(1, 6):
            progress.update(generation, best=float(generation))
    lines = stream.getvalue().splitlines()
    # The first update (the loop has started) and the final position; nothing in between within an hour.
    assert [line.split(",")[0] for line in lines] == ["C: 1 generations", "C: 5 generations"]
    assert lines[1].endswith("best 5") and "left" not in lines[1]  # open-ended: no time left to give


def test_a_terminal_gets_a_bar_with_the_latest_values():
    stream = io.StringIO()
    with Progress(10, "V", stream=stream, bar=True) as progress:
        progress.update(3, loss=0.125)
    text = stream.getvalue()
    assert "V:" in text and "3/10" in text and "loss=0.125" in text


def test_track_follows_the_rows_a_loop_appends_to_its_curve(capsys):
    curve = CurveLog()
    with track(curve, "V", 4, every_seconds=0.0) as progress:
        curve.append(step=2, loss=0.5, kind="train")
        curve.append(step=4, loss=0.25, kind="train")
    assert progress.position == 4 and progress.values == {"loss": 0.25}
    assert capsys.readouterr().err.splitlines()[-1].startswith("V: 4/4 steps (100%)")
    assert not curve.listeners  # detached: rows appended later do not reach a closed bar
    curve.append(step=5, loss=0.1)
    assert curve.state_dict() == {"rows": curve.rows}  # listeners are never checkpointed


def test_tensorboard_is_asked_for_by_flag_and_missing_is_one_line(tmp_path, monkeypatch):
    config = make_config(ToyConfig, PRESETS, "fast")
    assert tensorboard_dir(config, tmp_path) is None
    real_find_spec = importlib.util.find_spec

    def find_spec(name, *args):
        return None if name == "tensorboard" else real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    missing = r"--tensorboard needs the tensorboard package: pip install 'dreamlab\[tensorboard\]'"
    with pytest.raises(UserError, match=missing):
        make_config(ToyConfig, PRESETS, "fast", tensorboard=True)


def test_tensorboard_receives_the_curve_live(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = make_config(ToyConfig, PRESETS, "fast", tensorboard=True)
    log_dir = tensorboard_dir(config, tmp_path)
    curve = CurveLog()
    with track(curve, "M", 10, tensorboard=log_dir, every_seconds=1e9):
        curve.append(step=5, loss=0.5, note="x")
        curve.append(step=10, loss=0.25, nll=float("nan"))
        # Flushed at each row: TensorBoard sees the curve while the run goes on.
        events = EventAccumulator(str(log_dir)).Reload()
        assert [(s.step, s.value) for s in events.Scalars("M/loss")] == [(5, 0.5), (10, 0.25)]
        assert "M/nll" not in events.Tags()["scalars"]  # non-finite values are not plotted


def test_metrics_writer_writes_scalars_only(tmp_path):
    pytest.importorskip("tensorboard")
    writer = MetricsWriter(tmp_path)
    writer.write({"score": 3, "done": True, "name": "x"}, step=1)
    writer.close()
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert EventAccumulator(str(tmp_path)).Reload().Tags()["scalars"] == ["score"]
