"""Training stages resume exactly, NaN is named, and the smoke pipeline runs end to end and resumes."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from experiment_scripts import load_experiment

from dreamlab.checkpoint import Checkpointer, CheckpointError, load_checkpoint, save_checkpoint
from dreamlab.cmaes import CMAES
from dreamlab.config import make_config, parse_config
from dreamlab.grad_monitor import NonFiniteLossError
from dreamlab.results import CurveLog
from dreamlab.runs import UserError, cli
from dreamlab.worldmodels import (
    MDNRNN,
    ConvVAE,
    LatentEpisodes,
    evolve_controller,
    get_task,
    pipeline,
    train_mdnrnn,
    train_vae,
)
from dreamlab.worldmodels.pipeline import PRESETS, STAGE_INPUTS, WorldModelsConfig

compare = load_experiment("worldmodels_compare")


@cli
def cli_main(argv: list[str]) -> dict:
    """experiments/worldmodels.py's command line, built from the package (one line and exit code 2 on a user error)."""
    return pipeline.run(parse_config(WorldModelsConfig, PRESETS, argv))


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Small models: extra intra-op threads only add overhead (and stall badly on a shared, busy CPU)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _frames():
    return torch.randint(0, 256, (24, 64, 64, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


def _train_vae(run_dir, steps, autocast="none"):
    torch.manual_seed(0)
    vae = ConvVAE(8)
    config = {"stage": "vae-test"}
    curve = train_vae(
        vae,
        _frames,
        steps=steps,
        batch_size=8,
        lr=1e-3,
        kl_tolerance=0.5,
        seed=0,
        checkpointer=Checkpointer(run_dir, config),
        log_every=1,
        autocast=autocast,
    )
    return vae, curve


def test_vae_training_resumes_exactly(tmp_path):
    straight, _ = _train_vae(tmp_path / "straight", 4)
    _train_vae(tmp_path / "killed", 2)  # as if killed after step 2 ...
    resumed, _ = _train_vae(tmp_path / "killed", 4)  # ... and re-run with the full budget
    for a, b in zip(straight.parameters(), resumed.parameters(), strict=True):
        torch.testing.assert_close(a, b)


def _drop_loop_bookkeeping(run_dir):
    """Rewrite a checkpoint in the layout V and M saved before they ran on the shared training loop."""
    path = Path(run_dir) / "checkpoint.pt"
    saved = load_checkpoint(path)
    state = {k: v for k, v in saved["state"].items() if k not in {"timer", "window", "torch_rng"}}
    save_checkpoint(path, {**saved, "state": state})


def test_a_v_checkpoint_from_before_the_training_loop_resumes_exactly(tmp_path):
    straight, _ = _train_vae(tmp_path / "straight", 4)
    _train_vae(tmp_path / "old", 2)
    _drop_loop_bookkeeping(tmp_path / "old")
    resumed, curve = _train_vae(tmp_path / "old", 4)
    for a, b in zip(straight.parameters(), resumed.parameters(), strict=True):
        torch.testing.assert_close(a, b)
    assert [row["step"] for row in curve.rows] == [1, 2, 3, 4]


def _latents(nan=False):
    rng = np.random.default_rng(0)
    mu = [rng.normal(size=(n, 3)).astype(np.float32) for n in (9, 5, 12)]
    if nan:
        mu[1][2, 0] = np.nan
    logvar = [np.full_like(m, -3.0) for m in mu]
    actions = [rng.integers(3, size=len(m)) for m in mu]
    dones = [np.eye(len(m), dtype=bool)[-1] for m in mu]
    return LatentEpisodes(mu, logvar, actions, dones)


def _train_m(run_dir, steps, nan=False, core="lstm", autocast="none"):
    torch.manual_seed(0)
    options = {"memory_slots": 4, "word_size": 3, "read_heads": 2} if core == "dnc" else None
    model = MDNRNN(3, 3, 8, core=core, core_options=options)
    curve = train_mdnrnn(
        model,
        _latents(nan),
        get_task("doom"),
        steps=steps,
        batch_size=2,
        seq_len=4,
        lr=1e-2,
        grad_clip=1.0,
        done_pos_weight=5.0,
        seed=0,
        checkpointer=Checkpointer(run_dir, {"m": 1}),
        log_every=1,
        autocast=autocast,
    )
    return model, curve


@pytest.mark.parametrize("core", ["lstm", "dnc"])
def test_mdnrnn_training_resumes_exactly(tmp_path, core):
    # The DNC's state is a nested named tuple; the checkpoint must carry it through a resume unchanged.
    straight, straight_curve = _train_m(tmp_path / "straight", 6, core=core)
    _train_m(tmp_path / "killed", 3, core=core)
    resumed, resumed_curve = _train_m(tmp_path / "killed", 6, core=core)
    for a, b in zip(straight.parameters(), resumed.parameters(), strict=True):
        torch.testing.assert_close(a, b)
    # no row lost or repeated (the wall seconds aside)
    assert _without_seconds(resumed_curve.rows) == _without_seconds(straight_curve.rows)


def _without_seconds(rows):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


def test_an_m_checkpoint_from_before_the_training_loop_resumes_exactly(tmp_path):
    straight, _ = _train_m(tmp_path / "straight", 6, core="dnc")
    _train_m(tmp_path / "old", 3, core="dnc")
    _drop_loop_bookkeeping(tmp_path / "old")
    resumed, _ = _train_m(tmp_path / "old", 6, core="dnc")
    for a, b in zip(straight.parameters(), resumed.parameters(), strict=True):
        torch.testing.assert_close(a, b)


def test_bf16_autocast_trains_v_and_m_to_float32s_losses(tmp_path):
    # A few mixed-precision steps: finite losses within a few percent of float32's (bf16 keeps 8 mantissa bits).
    for train, key in ((_train_vae, "loss"), (_train_m, "loss")):
        _, fp32 = train(tmp_path / f"{train.__name__}_fp32", 3)
        _, bf16 = train(tmp_path / f"{train.__name__}_bf16", 3, autocast="bf16")
        exact, mixed = [row[key] for row in fp32.rows], [row[key] for row in bf16.rows]
        assert len(mixed) == 3 and np.isfinite(mixed).all() and mixed != exact
        np.testing.assert_allclose(mixed, exact, rtol=0.05)


def test_stages_write_their_curves_to_tensorboard(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    vae, checkpointer = ConvVAE(8), Checkpointer(tmp_path / "v", {"v": 1})
    train_vae(
        vae,
        _frames,
        steps=2,
        batch_size=8,
        lr=1e-3,
        kl_tolerance=0.5,
        seed=0,
        checkpointer=checkpointer,
        log_every=1,
        tensorboard=tmp_path / "tb",
    )
    es = CMAES(np.zeros(2), 0.5, popsize=4, seed=0)
    fitness = lambda candidates, generation: -(candidates**2).sum(axis=1, keepdims=True)  # noqa: E731
    evolve_controller(
        es, fitness, generations=2, checkpointer=Checkpointer(tmp_path / "c", {"c": 1}), tensorboard=tmp_path / "tb"
    )
    scalars = EventAccumulator(str(tmp_path / "tb")).Reload().Tags()["scalars"]
    assert {"V/loss", "V/kl", "C/mean_score", "C/sigma"} <= set(scalars)


def test_mdnrnn_training_names_nan(tmp_path):
    with pytest.raises(NonFiniteLossError, match="M loss"):
        _train_m(tmp_path / "nan", 20, nan=True)


def test_evolution_keeps_each_checked_mean_across_a_resume(tmp_path):
    target = np.array([1.0, -2.0, 0.5])

    def fitness(candidates, generation):  # (P, 1 trial): higher is closer to the target
        return -((candidates - target) ** 2).sum(axis=1, keepdims=True)

    def real_score(mean, generation):  # the "real" check prefers generation 2's mean, whatever it is
        return np.full(3, 100.0 if generation == 2 else 0.0)

    def run(generations):
        es = CMAES(np.zeros(3), 0.5, popsize=8, seed=3)
        checkpointer = Checkpointer(tmp_path, {"seed": 3}, filename="cmaes.pt")
        evolution = evolve_controller(
            es,
            fitness,
            generations=generations,
            checkpointer=checkpointer,
            real_score=real_score,
            real_every=2,
            log=lambda message: None,
        )
        return es, evolution

    _, first = run(2)
    es, evolution = run(5)  # resumes at generation 2; checks at 4 and at the last, 5
    assert sorted(evolution.checked_means) == [2, 4, 5]
    np.testing.assert_array_equal(evolution.checked_means[2], first.checked_means[2])
    np.testing.assert_array_equal(evolution.checked_means[5], es.mean)
    generation, mean = evolution.best_checked()
    assert generation == 2 and mean is evolution.checked_means[2]
    evolution.checked_means.clear()
    with pytest.raises(ValueError, match="no real check"):
        evolution.best_checked()


def test_a_c_checkpoint_from_before_the_training_loop_resumes_where_it_stopped(tmp_path):
    fitness = lambda candidates, generation: -(candidates**2).sum(axis=1, keepdims=True)  # noqa: E731

    def evolve(run_dir, generations):
        es = CMAES(np.ones(3), 0.5, popsize=6, seed=1)
        evolve_controller(es, fitness, generations=generations, checkpointer=Checkpointer(run_dir, {"c": 1}))
        return es

    straight = evolve(tmp_path / "straight", 4)
    evolve(tmp_path / "old", 2)
    path = tmp_path / "old" / "checkpoint.pt"  # rewritten as C saved it before: strategy and curve, no step
    saved = load_checkpoint(path)
    state = {"es": saved["state"]["es"], "curve": saved["state"]["curve"]}
    save_checkpoint(path, {**saved, "state": state})
    resumed = evolve(tmp_path / "old", 4)
    assert resumed.generation == 4
    np.testing.assert_array_equal(resumed.mean, straight.mean)


def test_bad_config_is_named():
    def make(**fields):
        return make_config(WorldModelsConfig, PRESETS, "smoke", **fields)

    with pytest.raises(UserError, match="train_in"):
        make(train_in="imagination")
    with pytest.raises(UserError, match="final_controller"):
        make(final_controller="best")
    with pytest.raises(UserError, match="real_eval_episodes"):
        make(final_controller="best_check", real_eval_episodes=0)
    with pytest.raises(UserError, match="task 'pong' is not one of doom, carracing"):
        make(task="pong")
    with pytest.raises(UserError, match="drop --include_cell"):
        make(z_only=True, include_cell=True)
    with pytest.raises(SystemExit):
        cli_main(["--preset", "huge"])


@pytest.mark.parametrize(
    ("preset", "run"),
    [
        ("doom_r10k", "doom_takecover_lstm_r10k"),
        ("doom_r10k", "doom_takecover_dnc_r10k"),
        ("doom_iterative", "doom_takecover_lstm_r10k_iter2"),
    ],
)
def test_the_doom_presets_are_the_committed_headlines_configs(preset, run):
    results = Path(__file__).resolve().parents[1] / "results" / "worldmodels"
    recorded = json.loads((results / f"{run}.json").read_text())["config"]
    config = make_config(WorldModelsConfig, PRESETS, preset, core=recorded["core"])
    # These name a run and say where and on what it ran; they differ by run, not by preset.
    run_specific = {"preset", "name", "run_dir", "results_dir", "data_dir", "threads", "workers"}
    expected = {key: value for key, value in recorded.items() if key not in run_specific}
    assert {key: getattr(config, key) for key in expected} == expected


def test_the_script_is_the_packages_command_line():
    script = Path(__file__).resolve().parents[1] / "experiments" / "worldmodels.py"
    bad = subprocess.run([sys.executable, str(script), "--preset", "huge"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1].startswith(
        "error: argument --preset: invalid choice: 'huge'"
    )
    helped = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0 and "--final_controller" in helped.stdout and "--preset" in helped.stdout


def stage_checkpointer(folder, filename, **fields):
    """The experiment's checkpointer for one stage's file, for a config with ``fields`` changed."""
    config = WorldModelsConfig(**fields)
    return Checkpointer(folder, config, filename=filename, depends_on=STAGE_INPUTS[filename])


def test_more_rollouts_keep_v_and_retrain_m(tmp_path):
    # V trains on the first vae_rollouts rollouts only, so collecting more must not invalidate it; M sees them all.
    for filename in ("vae.pt", "mdnrnn.pt"):
        stage_checkpointer(tmp_path, filename, rollouts=1000).save({"step": 1})
    assert stage_checkpointer(tmp_path, "vae.pt", rollouts=3000).load() == {"step": 1}
    with pytest.raises(CheckpointError, match="vae_rollouts"):
        stage_checkpointer(tmp_path, "vae.pt", vae_rollouts=500).load()
    with pytest.raises(CheckpointError, match="rollouts"):
        stage_checkpointer(tmp_path, "mdnrnn.pt", rollouts=3000).load()


def test_c_seed_repeats_c_on_the_same_m(tmp_path):
    # Another C seed keeps V and M (a C-only repeat on one world model) but is refused by C's own checkpoint.
    for filename in ("vae.pt", "mdnrnn.pt", "cmaes.pt"):
        stage_checkpointer(tmp_path, filename).save({"step": 1})
    assert (
        stage_checkpointer(tmp_path, "vae.pt", c_seed=1).load()
        == stage_checkpointer(tmp_path, "mdnrnn.pt", c_seed=1).load()
        == {"step": 1}
    )
    with pytest.raises(CheckpointError, match="c_seed"):
        stage_checkpointer(tmp_path, "cmaes.pt", c_seed=1).load()
    # C on z alone is another controller on the same M (--m_from reuses it: docs/worldmodels.md).
    assert stage_checkpointer(tmp_path, "mdnrnn.pt", z_only=True).load() == {"step": 1}
    with pytest.raises(CheckpointError, match="z_only"):
        stage_checkpointer(tmp_path, "cmaes.pt", z_only=True).load()


def test_z_only_evolves_c_on_z_alone_in_the_dream_and_the_real_game(tmp_path):
    argv = ["--preset", "smoke", "--z_only", "--threads", "1"]
    out = cli_main([*argv, "--run_dir", str(tmp_path / "run"), "--results_dir", str(tmp_path / "results")])
    z_dim, actions = WorldModelsConfig().z_dim, get_task("doom").action_size
    assert out["controller_params"] == (z_dim + 1) * actions and len(out["real_episode_returns"]) == 4


def test_smoke_pipeline_end_to_end_and_resume(tmp_path, capsys):
    argv = [
        "--preset",
        "smoke",
        "--run_dir",
        str(tmp_path / "run"),
        "--results_dir",
        str(tmp_path / "results"),
        "--threads",
        "1",
        "--generations",
        "1",
    ]
    cli_main(argv)
    # Resume with a larger CMA-ES budget: only the missing generation runs, earlier stages are reloaded.
    out = cli_main([*argv[:-1], "2"])
    result = json.loads(Path(out["result"]).read_text())
    metrics = result["metrics"]
    assert len(metrics["real_episode_returns"]) == 4 and metrics["trained_in"] == "dream"
    assert all(1 <= r <= 100 for r in metrics["real_episode_returns"])
    assert result["config"]["core"] == "lstm"
    assert set(result["stage_seconds"]) == {"collect", "V", "encode", "M", "C", "evaluate"}
    folder = tmp_path / "results" / "worldmodels"
    curve = (folder / "doom_lstm_smoke_curve.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in curve[1:]] == ["1", "2"]  # generation 1 not repeated
    # A setting of C only: V and M are reused, C's checkpoint is refused with the field named.
    with pytest.raises(SystemExit) as refused:
        cli_main([*argv[:-1], "2", "--temperature", "1.0"])
    assert refused.value.code == 2 and "temperature" in capsys.readouterr().err
    # The thesis' protocol: test the mean whose real check scored highest, on the final test's own episodes.
    best = cli_main([*argv[:-1], "2", "--final_controller", "best_check"])
    checks = {
        row["generation"]: row["real_mean"] for row in CurveLog.from_csv(folder / "doom_lstm_smoke_curve.csv").rows
    }
    assert best["final_controller_generation"] == max(checks, key=lambda g: (checks[g], g))
    assert metrics["final_controller_generation"] == 2 and metrics["final_controller"] == "last"
    for suffix in ("curve.png", "real_episode.gif", "dream_episode.gif", "vae_reconstructions.png", "vae_samples.png"):
        assert (folder / f"doom_lstm_smoke_{suffix}").stat().st_size > 0
    # An MDN-DNC run sharing the LSTM run's rollouts and V trains only its own M and C; then the two are compared.
    vae_written = (tmp_path / "run" / "vae.pt").stat().st_mtime_ns
    dnc_argv = [*argv[:2], "--run_dir", str(tmp_path / "dnc"), "--data_dir", str(tmp_path / "run"), *argv[4:]]
    cli_main([*dnc_argv, "--core", "dnc", "--dnc_memory_slots", "4", "--dnc_word_size", "4"])
    assert (tmp_path / "run" / "vae.pt").stat().st_mtime_ns == vae_written
    assert not (tmp_path / "dnc" / "rollouts").exists() and (tmp_path / "dnc" / "mdnrnn.pt").is_file()
    summary = compare.main(["doom_lstm_smoke", "doom_dnc_smoke", "--results_dir", str(tmp_path / "results")])
    assert set(summary) == {"lstm", "dnc"} and summary["dnc"]["episodes"] == 4
    assert (folder / "doom_takecover_core_comparison.png").stat().st_size > 0


def test_carracing_smoke_pipeline_with_real_env_training(tmp_path):
    pytest.importorskip("Box2D", reason="CarRacing needs pip install 'dreamlab[box2d]'")
    out = cli_main(
        [
            "--preset",
            "smoke",
            "--task",
            "carracing",
            "--z_dim",
            "32",
            "--train_in",
            "real",
            "--max_steps",
            "30",
            "--rollouts",
            "2",
            "--vae_rollouts",
            "2",
            "--trials",
            "1",
            "--generations",
            "1",
            "--final_episodes",
            "2",
            "--real_eval_episodes",
            "1",
            "--threads",
            "1",
            "--run_dir",
            str(tmp_path / "run"),
            "--results_dir",
            str(tmp_path / "results"),
        ]
    )
    assert out["trained_in"] == "real" and len(out["real_episode_returns"]) == 2
    assert not (tmp_path / "results" / "worldmodels" / "carracing_lstm_smoke_dream_episode.gif").exists()
