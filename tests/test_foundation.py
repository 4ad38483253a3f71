"""The shared machinery: device/dtype, configs and presets, atomic files, checkpoints, results, NaN catching."""

import dataclasses
import errno
import io
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from dreamlab.checkpoint import Checkpointer, CheckpointError, load_checkpoint, restore_state, save_checkpoint, state_of
from dreamlab.config import RunConfig, make_config, parse_config
from dreamlab.dnc.state import ControllerState
from dreamlab.files import atomic_savez, atomic_write_text, load_npz, npz_bytes
from dreamlab.grad_monitor import GradientMonitor, NonFiniteGradientError, NonFiniteLossError, check_finite
from dreamlab.parallel import WorkerPool
from dreamlab.results import CurveLog, StageTimer, git_commit, write_result
from dreamlab.runs import UserError, cli
from dreamlab.runtime import resolve_device, resolve_dtype, seed_everything


@dataclasses.dataclass
class ToyConfig(RunConfig):
    width: int = 8
    epochs: int = 3
    lr: float = 1e-3
    layers: tuple[int, ...] = (4, 4)
    limit: int | None = None
    augment: bool = False

    RESUMABLE_FIELDS = ("epochs",)


PRESETS = {"smoke": {"width": 2}, "fast": {}, "paper": {"width": 64, "layers": (128, 128)}}


def test_devices_and_dtypes():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in {"cpu", "cuda"}
    for bad in ("tpu", "cuda:x", "gpu0"):
        with pytest.raises(ValueError, match="unknown device"):
            resolve_device(bad)
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="CUDA is not available on this machine; use --device cpu"):
            resolve_device("cuda:0")
    assert resolve_dtype("float64") is torch.float64
    with pytest.raises(ValueError, match="unknown dtype"):
        resolve_dtype("float16x")


def test_seeding_reproduces_draws():
    a = (seed_everything(3).random(), torch.rand(1).item())
    b = (seed_everything(3).random(), torch.rand(1).item())
    assert a == b


def test_cli_presets_and_overrides():
    config = parse_config(
        ToyConfig, PRESETS, ["--preset", "paper", "--lr", "0.5", "--layers", "1,2,3", "--augment", "--limit", "7"]
    )
    assert (config.preset, config.width, config.lr, config.layers, config.augment, config.limit) == (
        "paper",
        64,
        0.5,
        (1, 2, 3),
        True,
        7,
    )
    assert parse_config(ToyConfig, PRESETS, ["--preset", "smoke", "--limit", "none"]).limit is None
    with pytest.raises(SystemExit):
        parse_config(ToyConfig, PRESETS, ["--preset", "huge"])
    with pytest.raises(SystemExit):
        parse_config(ToyConfig, PRESETS, ["--widht", "3"])


def test_make_config_errors_name_the_problem():
    assert make_config(ToyConfig, PRESETS, "smoke", lr=2.0).width == 2
    with pytest.raises(ValueError, match="unknown preset 'nope'"):
        make_config(ToyConfig, PRESETS, "nope")
    with pytest.raises(ValueError, match="no field"):
        make_config(ToyConfig, PRESETS, "fast", widht=3)
    with pytest.raises(TypeError, match="paper"):  # a script without the required presets is a bug, not a mistake
        make_config(ToyConfig, {"smoke": {}, "fast": {}}, "fast")


def test_atomic_write_leaves_no_temp_files(tmp_path):
    target = tmp_path / "sub" / "a.txt"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two"
    assert os.listdir(target.parent) == ["a.txt"]


def test_full_disk_names_the_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    target = atomic_write_text(tmp_path / "result.json", "old")

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="cannot write .*result.json: No space left on device; free some space") as err:
        atomic_write_text(target, "new")
    assert err.value.errno == errno.ENOSPC
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["result.json"]  # no temp file left behind


def test_cli_makes_a_full_disk_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left")))

    @cli
    def main() -> None:
        atomic_write_text(tmp_path / "curve.csv", "step\n")

    with pytest.raises(SystemExit) as exit_:
        main()
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and "curve.csv" in err


def test_npz_round_trip_and_damage_named(tmp_path):
    path = atomic_savez(tmp_path / "r.npz", frames=np.zeros((3, 4), np.uint8), actions=np.arange(3))
    assert load_npz(path, keys=["frames", "actions"])["actions"].tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="missing array"):
        load_npz(path, keys=["rewards"])
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(ValueError, match="r.npz: truncated or corrupt"):
        load_npz(path)
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        load_npz(tmp_path / "nope.npz")


def test_npz_bytes_are_numpys_npz_deflated_and_without_pickles(tmp_path):
    frames = np.tile(np.arange(64, dtype=np.uint8), (50, 64, 3, 1))
    arrays = {"frames": frames, "rewards": np.linspace(0, 1, 50, dtype=np.float32), "dones": np.zeros(50, bool)}
    compressed, stored = npz_bytes(**arrays), npz_bytes(compress=False, **arrays)
    for data in (compressed, stored):
        with np.load(io.BytesIO(data), allow_pickle=False) as loaded:
            assert sorted(loaded.files) == sorted(arrays)
            assert all(np.array_equal(loaded[k], v) and loaded[k].dtype == v.dtype for k, v in arrays.items())
    assert len(compressed) < len(stored) // 10
    with zipfile.ZipFile(io.BytesIO(compressed)) as archive:
        assert {info.compress_type for info in archive.infolist()} == {zipfile.ZIP_DEFLATED}
    with pytest.raises(ValueError, match="allow_pickle"):
        npz_bytes(objects=np.array([{}, None], dtype=object))


def test_checkpoint_round_trip_with_numpy_and_rng(tmp_path):
    rng = np.random.default_rng(5)
    rng.random(3)
    model = nn.Linear(3, 2)
    state = {
        "model": model.state_dict(),
        "array": np.arange(6.0).reshape(2, 3),
        "scalar_array": np.array(2.5),  # 0-d, as running statistics of a scalar keep after a load
        "transposed": np.arange(6.0).reshape(2, 3).T,
        "rng": rng.bit_generator.state,
        "torch_rng": torch.get_rng_state(),
        "history": [1, 2.5, "x", None, (True, 3)],
    }
    save_checkpoint(tmp_path / "c.pt", state)
    loaded = load_checkpoint(tmp_path / "c.pt")
    np.testing.assert_array_equal(loaded["array"], state["array"])
    assert loaded["scalar_array"].shape == () and loaded["scalar_array"] == 2.5
    np.testing.assert_array_equal(loaded["transposed"], state["transposed"])
    # A second round trip (a resumed run that saves again) keeps every shape.
    save_checkpoint(tmp_path / "c2.pt", loaded)
    assert load_checkpoint(tmp_path / "c2.pt")["scalar_array"].shape == ()
    restored = np.random.default_rng()
    restored.bit_generator.state = loaded["rng"]
    assert restored.random() == rng.random()
    other = nn.Linear(3, 2)
    other.load_state_dict(loaded["model"])
    torch.testing.assert_close(other.weight, model.weight)
    assert loaded["history"] == state["history"]


def test_checkpoint_refuses_pickled_objects_and_corruption(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    torch.save({"dreamlab_checkpoint": 1, "state": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(
        CheckpointError, match="evil.pt: not a dreamlab checkpoint: it asks to build posix.system"
    ) as err:
        load_checkpoint(tmp_path / "evil.pt")
    # torch's own message advises loading with weights_only=False, i.e. running the file's code: never passed on.
    assert "will not be unpickled" in str(err.value) and "weights_only" not in str(err.value)
    assert "\n" not in str(err.value)
    save_checkpoint(tmp_path / "ok.pt", {"x": torch.ones(1000)})
    data = (tmp_path / "ok.pt").read_bytes()
    for length in (len(data) // 2, 10, 0):
        (tmp_path / "cut.pt").write_bytes(data[:length])
        with pytest.raises(CheckpointError, match="cut.pt: truncated or corrupt checkpoint") as err:
            load_checkpoint(tmp_path / "cut.pt")
        assert str(err.value).endswith("delete it to start afresh, or pass another --run_dir")
        assert "\n" not in str(err.value)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")
    with pytest.raises(TypeError, match="cannot checkpoint"):
        save_checkpoint(tmp_path / "bad.pt", {"x": object()})


def test_checkpointer_guards_config(tmp_path):
    config = make_config(ToyConfig, PRESETS, "fast")
    assert Checkpointer(tmp_path, config).load() is None
    Checkpointer(tmp_path, config).save({"step": 3})
    longer = dataclasses.replace(config, epochs=10, device="cpu")  # budgets and devices may change on resume
    assert Checkpointer(tmp_path, longer).load() == {"step": 3}
    wider = dataclasses.replace(config, width=9)
    with pytest.raises(CheckpointError, match="width: 8 -> 9"):
        Checkpointer(tmp_path, wider).load()
    # A pipeline stage that depends only on some fields ignores the others, and names a change in its own.
    stage = Checkpointer(tmp_path, config, filename="stage.pt", depends_on=("lr",))
    stage.save({"step": 1})
    assert Checkpointer(tmp_path, wider, filename="stage.pt", depends_on=("lr",)).load() == {"step": 1}
    faster = dataclasses.replace(config, lr=0.1)
    with pytest.raises(CheckpointError, match="lr: 0.001 -> 0.1"):
        Checkpointer(tmp_path, faster, filename="stage.pt", depends_on=("lr",)).load()
    # A field added to the config class after the checkpoint was written counts as its default.
    older = {k: v for k, v in dataclasses.asdict(config).items() if k != "augment"}
    Checkpointer(tmp_path, older, filename="old.pt").save({"step": 2})
    assert Checkpointer(tmp_path, config, filename="old.pt").load() == {"step": 2}
    with pytest.raises(CheckpointError, match="augment: False -> True"):
        Checkpointer(tmp_path, dataclasses.replace(config, augment=True), filename="old.pt").load()


def test_named_objects_and_generators_survive_a_checkpoint(tmp_path):
    model, curve = nn.Linear(3, 2), CurveLog()
    numpy_rng, torch_rng = np.random.default_rng(1), torch.Generator().manual_seed(2)
    curve.append(step=1, loss=0.5)
    objects = {"model": model, "curve": curve, "rng": numpy_rng, "generator": torch_rng}
    checkpointer = Checkpointer(tmp_path, make_config(ToyConfig, PRESETS, "fast"))
    checkpointer.save({name: state_of(obj) for name, obj in objects.items()})
    expected = (numpy_rng.random(), torch.rand(1, generator=torch_rng))
    fresh = {"model": nn.Linear(3, 2), "curve": CurveLog()}
    fresh.update(rng=np.random.default_rng(), generator=torch.Generator())
    saved = checkpointer.load()
    for name, obj in fresh.items():
        restore_state(obj, saved[name])
    torch.testing.assert_close(fresh["model"].weight, model.weight)
    assert fresh["curve"].rows == [{"step": 1, "loss": 0.5}]
    assert fresh["rng"].random() == expected[0]
    assert torch.equal(torch.rand(1, generator=fresh["generator"]), expected[1])


def test_checkpoint_stores_named_tuples_as_plain_tuples(tmp_path):
    # Loading builds no custom classes: a named tuple comes back as a tuple with the same leaves.
    state = {"core": ControllerState(torch.ones(2), torch.zeros(2))}
    save_checkpoint(tmp_path / "n.pt", state)
    loaded = load_checkpoint(tmp_path / "n.pt")["core"]
    assert type(loaded) is tuple
    torch.testing.assert_close(loaded[0], torch.ones(2))


def test_result_file_fields(tmp_path):
    config = make_config(ToyConfig, PRESETS, "smoke")
    timer = StageTimer()
    with timer.stage("train"):
        pass
    path = write_result(
        "toy",
        "run1",
        experiment="toy",
        config=config,
        metrics={"acc": np.float32(0.5)},
        wall_seconds=1.25,
        stages=timer.seconds,
        results_dir=tmp_path,
    )
    record = json.loads(path.read_text())
    assert path == tmp_path / "toy" / "run1.json"
    assert set(record) >= {"experiment", "command", "git_commit", "wall_seconds", "machine", "config", "metrics"}
    assert record["config"]["layers"] == [4, 4] and record["metrics"]["acc"] == 0.5
    assert "train" in record["stage_seconds"] and record["machine"]["cpu_count"] >= 1


def test_curve_log_survives_resume(tmp_path):
    log = CurveLog()
    log.append(step=0, loss=1.0)
    log.append(step=1, loss=0.5, extra=2)
    resumed = CurveLog()
    resumed.load_state_dict(log.state_dict())
    resumed.append(step=2, loss=0.25)
    text = resumed.to_csv(tmp_path / "c.csv").read_text().splitlines()
    assert text[0] == "step,loss,extra" and len(text) == 4 and resumed.column("loss") == [1.0, 0.5, 0.25]


def test_nan_loss_and_gradients_are_named():
    with pytest.raises(NonFiniteLossError, match="M loss"):
        check_finite(torch.tensor(float("nan")), "M loss")
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    monitor = GradientMonitor(model)
    model(torch.ones(1, 2)).sum().backward()
    assert set(monitor.check()) == {"0.weight", "0.bias", "1.weight", "1.bias"}
    model[1].weight.grad[0, 0] = float("inf")
    with pytest.raises(NonFiniteGradientError, match=r"1\.weight") as err:
        monitor.check()
    assert "0.weight" not in str(err.value)


def square(x: int) -> int:
    return x * x


def test_worker_pool_local_processes_and_in_process():
    with WorkerPool(workers=0) as pool:
        assert pool.map(square, range(5)) == [0, 1, 4, 9, 16]
    with WorkerPool(workers=2) as pool:
        assert pool.map(square, range(10)) == [i * i for i in range(10)]
    with pytest.raises(ValueError, match="workers"):
        WorkerPool(workers=-1)


def worker_pid(_: int) -> int:
    return os.getpid()


_ORPHAN_SCRIPT = """
import os, sys
sys.path.insert(0, sys.argv[1])
from tests.test_foundation import worker_pid
from dreamlab.parallel import WorkerPool
with WorkerPool(workers=1) as pool:
    print(pool.map(worker_pid, [0])[0], flush=True)
    os.kill(os.getpid(), 9)  # the parent dies without any clean-up
"""


def test_worker_pool_workers_exit_when_the_parent_is_killed():
    root = str(Path(__file__).resolve().parents[1])
    out = subprocess.run([sys.executable, "-c", _ORPHAN_SCRIPT, root], capture_output=True, text=True, timeout=60)
    worker = int(out.stdout.split()[0])
    for _ in range(100):
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(worker, 9)
    pytest.fail(f"worker {worker} outlived its killed parent by 10 s")


def start_child_then_die(pid_file: str) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    Path(pid_file).write_text(str(child.pid))
    os.kill(os.getpid(), signal.SIGKILL)  # a crash: the worker dies without cleaning up


def _running(pid: int) -> bool:
    # A killed child re-parented to a PID 1 that does not reap stays a zombie: dead, though os.kill(pid, 0) succeeds.
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_worker_pool_names_a_dead_worker_and_stops_what_it_started(tmp_path):
    pid_file = tmp_path / "child.pid"
    dead_worker = pytest.raises(RuntimeError, match=r"worker process died while running .*start_child_then_die")
    with dead_worker, WorkerPool(workers=1) as pool:
        pool.map(start_child_then_die, [str(pid_file)])
    child = int(pid_file.read_text())
    for _ in range(100):
        if not _running(child):
            return
        time.sleep(0.1)
    os.kill(child, signal.SIGKILL)
    pytest.fail(f"process {child}, started by the dead worker, outlived it by 10 s")


def test_float64_switch_reaches_experiment(tmp_path):
    script = Path(__file__).resolve().parents[1] / "experiments" / "mdn_toy.py"
    out = subprocess.run(
        [
            sys.executable,
            str(script),
            "--preset",
            "smoke",
            "--steps",
            "20",
            "--dtype",
            "float64",
            "--device",
            "cpu",
            "--results_dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    record = json.loads((tmp_path / "mdn" / "mdn_toy_smoke.json").read_text())
    assert record["config"]["dtype"] == "float64"
    bad = subprocess.run(
        [sys.executable, str(script), "--preset", "smoke", "--device", "tpu"], capture_output=True, text=True
    )
    assert bad.returncode != 0 and "'tpu' is not a device" in bad.stderr


def test_git_commit_is_dirty_for_changed_code_but_not_for_new_results(tmp_path):
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(tmp_path)]
    subprocess.run([*git, "init", "-q"], check=True)
    (tmp_path / "model.py").write_text("x = 1\n")
    subprocess.run([*git, "add", "model.py"], check=True)
    subprocess.run([*git, "commit", "-qm", "code"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    (tmp_path / "results" / "rnd").mkdir(parents=True)
    (tmp_path / "results" / "rnd" / "curves.csv").write_text("step\n1\n")
    assert git_commit(tmp_path) == head
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "rnd.md").write_text("a result, described\n")
    (tmp_path / "README.md").write_text("the result's row\n")
    assert git_commit(tmp_path) == head
    (tmp_path / "model.py").write_text("x = 2\n")
    assert git_commit(tmp_path) == f"{head}-dirty"
