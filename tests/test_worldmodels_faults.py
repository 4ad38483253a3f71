"""World Models fails fast and says why: data of another config is never reused, broken models never produce a
result, bad flags stop before any work, and a run dir (or a data dir being prepared) is never shared by two runs."""

import dataclasses
import json
import os
import re
import shutil

import numpy as np
import pytest
import torch

from dreamlab.checkpoint import Checkpointer, CheckpointError, load_checkpoint, save_checkpoint
from dreamlab.config import make_config, parse_config
from dreamlab.files import atomic_savez, load_npz
from dreamlab.parallel import WorkerPool
from dreamlab.runs import NonFiniteError, RunLock, UserError, cli
from dreamlab.worldmodels import (
    MDNRNN,
    Dream,
    LinearController,
    WorldModel,
    collect_rollouts,
    get_task,
    load_rollout,
    pipeline,
)
from dreamlab.worldmodels.pipeline import PRESETS, STAGE_INPUTS, WorldModelsConfig
from dreamlab.worldmodels.provenance import MANIFEST, DataDirLock, StageCheckpointer


@cli
def cli_main(argv: list[str]) -> dict:
    """experiments/worldmodels.py's command line, built from the package (one line and exit code 2 on a user error)."""
    return pipeline.run(parse_config(WorldModelsConfig, PRESETS, argv))


TINY = [
    "--preset", "smoke", "--max_steps", "30", "--rollouts", "2", "--vae_rollouts", "2", "--vae_steps", "2",
    "--vae_batch", "8", "--z_dim", "8", "--hidden_size", "8", "--n_components", "2", "--m_steps", "2",
    "--m_seq_len", "8", "--population", "4", "--trials", "1", "--generations", "1", "--real_eval_episodes", "0",
    "--final_episodes", "1", "--workers", "0", "--threads", "1",
]  # fmt: skip


@pytest.fixture(autouse=True)
def _one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished tiny run's folder (rollouts, V, latents, M, C, evaluation), copied afresh by each test."""
    folder = tmp_path_factory.mktemp("template")
    cli_main([*TINY, "--run_dir", str(folder / "run"), "--results_dir", str(folder / "results")])
    return folder / "run"


@pytest.fixture
def run_dir(finished_run, tmp_path):
    shutil.copytree(finished_run, tmp_path / "run")
    return tmp_path / "run"


def main(run_dir, *flags):
    return cli_main([*TINY, "--run_dir", str(run_dir), "--results_dir", str(run_dir.parent / "out"), *flags])


def refused(capsys, run_dir, *flags) -> str:
    """The one-line error of a run that must stop with exit code 2."""
    with pytest.raises(SystemExit) as stop:
        main(run_dir, *flags)
    # A smoke run that passed validation first notes that its scores test the plumbing only.
    lines = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("note: --preset smoke")]
    assert stop.value.code == 2 and len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


def latent_dirs(run_dir):
    return sorted(p for p in run_dir.glob("latents_*") if p.is_dir())


# 1. Data on disk is tied to the config that made it.


def _collect(folder, count, seed=0, max_steps=30, log=None):
    with WorkerPool(0) as pool:
        return collect_rollouts("doom", folder, count, seed, pool, max_episode_steps=max_steps, log=log or print)


def test_rollouts_of_another_seed_or_cap_are_refused_naming_the_fields(tmp_path):
    _collect(tmp_path, 1)
    assert json.loads((tmp_path / MANIFEST).read_text())["seed"] == 0
    with pytest.raises(UserError, match=r"seed 0 -> 1"):
        _collect(tmp_path, 1, seed=1)
    # Resuming a partly collected folder with another cap would mix episode lengths: refused instead.
    with pytest.raises(UserError, match=r"max_steps 30 -> 20.*delete"):
        _collect(tmp_path, 2, max_steps=20)
    assert not (tmp_path / "rollout_000001.npz").exists()


def test_a_folder_without_manifest_is_adopted_only_when_it_verifies(tmp_path):
    _collect(tmp_path, 2)
    (tmp_path / MANIFEST).unlink()  # as written before manifests
    messages = []
    _collect(tmp_path, 2, log=messages.append)
    assert any("verify" in m for m in messages) and (tmp_path / MANIFEST).is_file()
    (tmp_path / MANIFEST).unlink()
    with pytest.raises(UserError, match="do not reproduce.*differs from its replay"):
        _collect(tmp_path, 2, seed=1)
    # An episode cut at another cap (a resume with another --max_steps) is caught by its length.
    data = load_npz(tmp_path / "rollout_000001.npz")
    atomic_savez(tmp_path / "rollout_000001.npz", **{k: v[:10] for k, v in data.items()})
    with pytest.raises(UserError, match="rollout_000001.npz has 10 steps"):
        _collect(tmp_path, 2)


def test_rerun_with_another_seed_is_refused_before_any_work(run_dir, capsys):
    for name in ("vae.pt", "mdnrnn.pt", "cmaes.pt", "evaluation.pt"):
        (run_dir / name).unlink()  # what the checkpoints' errors advise; the rollouts must still refuse
    err = refused(capsys, run_dir, "--seed", "1")
    assert "rollouts" in err and "seed 0 -> 1" in err
    assert not (run_dir / "vae.pt").exists()


def test_a_new_v_never_reads_an_old_vs_latents(run_dir):
    (before,) = latent_dirs(run_dir)
    for name in ("vae.pt", "mdnrnn.pt", "cmaes.pt", "evaluation.pt"):
        (run_dir / name).unlink()
    main(run_dir, "--vae_lr", "0.01")
    after = [d for d in latent_dirs(run_dir) if d != before]
    assert len(after) == 1, "the new V must encode into its own folder"
    old, new = load_npz(before / "latent_000000.npz"), load_npz(after[0] / "latent_000000.npz")
    assert np.abs(old["mu"] - new["mu"]).max() > 1e-3
    assert json.loads((after[0] / MANIFEST).read_text())["rollouts"]["seed"] == 0


def _strip_inputs_record(path):
    payload = load_checkpoint(path)
    del payload["state"]["provenance_inputs"]
    save_checkpoint(path, payload)


def _make_legacy(run_dir):
    """The run folder as the code before provenance left it: no manifests, latents_vae<steps>, no input records."""
    (run_dir / "rollouts" / MANIFEST).unlink()
    (latents,) = latent_dirs(run_dir)
    (latents / MANIFEST).unlink()
    latents.rename(run_dir / "latents_vae2")
    for name in ("mdnrnn.pt", "cmaes.pt"):
        _strip_inputs_record(run_dir / name)


def test_an_old_run_folder_is_adopted_when_its_files_verify(run_dir, capsys):
    _make_legacy(run_dir)
    m_before = load_checkpoint(run_dir / "mdnrnn.pt")["state"]["model"]
    main(run_dir)
    out = capsys.readouterr().out
    assert "verify" in out and "latents_vae2 is no longer read" in out
    adopted = load_checkpoint(run_dir / "mdnrnn.pt")["state"]
    assert adopted["provenance_inputs"].startswith("latents_")  # recorded from now on
    for key, value in m_before.items():  # M was not retrained
        torch.testing.assert_close(adopted["model"][key], value)


def test_an_old_m_trained_on_other_latents_is_refused(run_dir, capsys):
    _make_legacy(run_dir)
    stale = load_npz(run_dir / "latents_vae2" / "latent_000000.npz")
    atomic_savez(run_dir / "latents_vae2" / "latent_000000.npz", **{**stale, "mu": stale["mu"] + 1.98})
    err = refused(capsys, run_dir)
    assert "mdnrnn.pt" in err and "cannot be verified" in err


def test_a_finished_run_loads_with_one_call(run_dir):
    world = WorldModel.load(run_dir)
    assert dataclasses.asdict(world.config) == json.loads((run_dir / "config.json").read_text())
    assert (world.config.z_dim, world.config.hidden_size, world.config.max_steps) == (8, 8, 30)
    frames = load_rollout(run_dir / "rollouts" / "rollout_000000.npz")["frames"][:3]
    assert world.encode(frames).shape == (3, 8) and world.reconstruct(frames).shape == frames.shape
    score, dreamed = world.dream(seed=0)
    assert dreamed.dtype == np.uint8 and dreamed.shape[1:] == (64, 64, 3) and 1 <= score <= 30
    # C playing the final test's first episode scores what the run's final test recorded for it.
    episode = world.play()
    tested = load_checkpoint(run_dir / "evaluation.pt")["state"]
    assert episode.episode_return == tested["returns"][0] and len(episode.frames) == tested["steps"][0]
    assert world.generation == tested["generation"] == 1


def test_loading_names_what_is_missing_or_of_another_config(run_dir, tmp_path):
    with pytest.raises(UserError, match="config.json is missing: .* is not a World Models run dir"):
        WorldModel.load(tmp_path / "nowhere")
    config = json.loads((run_dir / "config.json").read_text())
    (run_dir / "config.json").write_text(json.dumps({**config, "seed": 1}))
    with pytest.raises(UserError, match=r"vae.pt was written by a run with a different config \(seed: 0 -> 1\)"):
        WorldModel.load(run_dir)
    (run_dir / "config.json").write_text(json.dumps({**config, "generator": "dcgan"}))
    with pytest.raises(UserError, match="not a World Models config .*generator"):
        WorldModel.load(run_dir)
    (run_dir / "config.json").write_text(json.dumps(config))
    (run_dir / "cmaes.pt").unlink()
    with pytest.raises(UserError, match="cmaes.pt is missing: the run has not trained this stage"):
        WorldModel.load(run_dir)


def test_stage_checkpoints_refuse_other_inputs(tmp_path):
    config = WorldModelsConfig()
    depends = STAGE_INPUTS["mdnrnn.pt"]

    def checkpointer(inputs, adopt=lambda: False):
        return StageCheckpointer(tmp_path, config, "mdnrnn.pt", depends, inputs, "latents", adopt)

    checkpointer("latents_a").save({"step": 1})
    assert checkpointer("latents_a").load() == {"step": 1}
    with pytest.raises(CheckpointError, match="other latents \\(latents_a, this run's are latents_b\\)"):
        checkpointer("latents_b").load()
    Checkpointer(tmp_path, config, filename="mdnrnn.pt", depends_on=depends).save({"step": 2})  # no record
    with pytest.raises(CheckpointError, match="cannot be verified"):
        checkpointer("latents_b").load()
    adopting = checkpointer("latents_b", adopt=lambda: True)
    assert adopting.load() == {"step": 2} and adopting.adopted_legacy
    assert checkpointer("latents_b").load() == {"step": 2}  # recorded on adoption


def test_runs_differing_only_in_c_share_the_data_dir(run_dir, tmp_path):
    vae_written = (run_dir / "vae.pt").stat().st_mtime_ns
    out = main(tmp_path / "other", "--data_dir", str(run_dir), "--temperature", "1.3")
    assert out["episodes"] == 1 and (run_dir / "vae.pt").stat().st_mtime_ns == vae_written
    assert len(latent_dirs(run_dir)) == 1 and not (tmp_path / "other" / "rollouts").exists()


def test_a_c_only_repeat_reuses_another_runs_m(run_dir, tmp_path, capsys):
    other = tmp_path / "other"
    out = main(other, "--data_dir", str(run_dir), "--m_from", str(run_dir), "--c_seed", "1")
    assert "M: reusing" in capsys.readouterr().out and out["episodes"] == 1
    assert (other / "mdnrnn.pt").read_bytes() == (run_dir / "mdnrnn.pt").read_bytes()  # not retrained
    # An M of another config is refused by name, as any checkpoint is; a source without M before any work.
    err = refused(
        capsys, tmp_path / "bigger", "--data_dir", str(run_dir), "--m_from", str(run_dir), "--hidden_size", "12"
    )
    assert "mdnrnn.pt" in err and "hidden_size" in err
    err = refused(capsys, tmp_path / "third", "--m_from", str(tmp_path / "nowhere"))
    assert "--m_from" in err and "no mdnrnn.pt" in err and not (tmp_path / "third" / "rollouts").exists()


# 2. Broken models never produce a result.


def _poison_m(path, value):
    payload = load_checkpoint(path)
    payload["state"]["model"] = {k: torch.full_like(v, value) for k, v in payload["state"]["model"].items()}
    save_checkpoint(path, payload)


def test_an_m_checkpoint_with_nan_weights_stops_the_run(run_dir, capsys):
    _poison_m(run_dir / "mdnrnn.pt", float("nan"))
    (run_dir / "evaluation.pt").unlink()
    with pytest.raises(SystemExit) as stopped:
        main(run_dir)
    assert stopped.value.code == 1  # a run stopped by non-finite numbers: one line, no traceback, no result
    captured = capsys.readouterr()
    assert "mdnrnn.pt" in captured.err and captured.err.count("error:") == 1
    assert "stage V done" in captured.out and "stage M done" not in captured.out  # a failed stage is not done
    assert not (run_dir.parent / "out" / "worldmodels" / "doom_lstm_smoke.json").exists()


@pytest.mark.parametrize("flags", [["--m_steps", "1", "--m_lr", "1e30"], ["--m_steps", "3", "--m_lr", "1e6"]])
def test_m_blown_up_by_its_learning_rate_stops_the_run(run_dir, flags, capsys):
    # 1e30: the last update, which no loss of the loop sees, blows the weights up; 1e6: the loss diverges.
    for name in ("mdnrnn.pt", "cmaes.pt", "evaluation.pt"):
        (run_dir / name).unlink()
    with pytest.raises(SystemExit) as stopped:
        main(run_dir, *flags)
    assert stopped.value.code == 1
    assert re.search("M loss|diverged|not finite", capsys.readouterr().err)
    assert not (run_dir.parent / "out" / "worldmodels" / "doom_lstm_smoke.json").exists()


def test_the_dream_stops_when_z_turns_non_finite():
    torch.manual_seed(0)
    task = get_task("doom")
    model = MDNRNN(z_dim=4, action_size=3, hidden_size=8)
    with torch.no_grad():
        model.head.linear.bias.fill_(float("inf"))  # past float32's range: the mixture means overflow
        model.done_head.bias.fill_(-30.0)  # and an agent that never dies: it would score the cap
    controller = LinearController(4 + model.core.controller_feature_size(False), task)
    dream = Dream(model, task, controller, torch.zeros(3, 4), torch.zeros(3, 4), max_steps=50)
    with pytest.raises(NonFiniteError, match="dream's z"):
        dream.returns(torch.zeros(2, controller.n_params), trials=2, seed=0)


# 3. Bad flags stop before any work.


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--vae_batch", "0"], "--vae_batch must be positive"),
        (["--hidden_size", "-4"], "--hidden_size must be positive"),
        (["--rollouts", "0"], "--rollouts must be positive"),
        (["--generations", "0"], "--generations must be positive"),
        (["--grad_clip", "nan"], "--grad_clip must be a finite number"),
        (["--task", "carracing"], "--train_in real"),
        (["--core", "gru"], "--core"),
        (["--population", "1"], "--population must be >= 2"),
        (["--repeat_probability", "1"], "--repeat_probability"),
    ],
)
def test_bad_flags_are_one_line_before_any_work(tmp_path, capsys, flags, named):
    err = refused(capsys, tmp_path / "run", *flags)
    assert named in err
    assert not (tmp_path / "run").exists() and not (tmp_path / "out").exists()


def test_every_numeric_field_is_validated():
    numeric = [f.name for f in dataclasses.fields(WorldModelsConfig) if type(f.default) in (int, float)]
    assert len(numeric) > 25
    for name in numeric:
        with pytest.raises(UserError, match=f"--{name}"):
            make_config(WorldModelsConfig, PRESETS, "smoke", **{name: -5})


# 4. One run per run dir; one run at a time preparing a data dir.


def test_a_second_run_on_the_same_run_dir_stops_naming_the_pid(tmp_path, capsys):
    with RunLock(tmp_path / "run"):
        err = refused(capsys, tmp_path / "run")
    assert f"pid {os.getpid()}" in err and not (tmp_path / "run" / "rollouts").exists()


def test_a_data_dir_being_prepared_is_not_shared(tmp_path, capsys):
    with DataDirLock(tmp_path / "data"):
        err = refused(capsys, tmp_path / "run", "--data_dir", str(tmp_path / "data"))
    assert "data directory" in err and f"pid {os.getpid()}" in err
    assert not (tmp_path / "data" / "rollouts").exists()


def test_an_unwritable_results_dir_stops_before_any_work(tmp_path, capsys):
    (tmp_path / "out").write_text("a file, not a folder")
    err = refused(capsys, tmp_path / "run")
    assert "not writable" in err and not (tmp_path / "run" / "rollouts").exists()
