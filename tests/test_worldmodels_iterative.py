"""Iterative training (Ha & Schmidhuber 2018, section 5): controller rollouts are real episodes of the tested C,
recorded in the random rollouts' format under a manifest naming the agent; M and C train again on them; the
rounds resume, load and refuse data of another controller."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from experiment_scripts import load_experiment

from dreamlab.checkpoint import load_checkpoint
from dreamlab.files import load_npz
from dreamlab.parallel import WorkerPool
from dreamlab.runs import UserError
from dreamlab.worldmodels import pipeline
from dreamlab.worldmodels.iterative import collect_controller_rollouts
from dreamlab.worldmodels.loading import WorldModel
from dreamlab.worldmodels.pipeline import ITERATION_SEED_BASE, WorldModelsConfig
from dreamlab.worldmodels.provenance import read_manifest
from dreamlab.worldmodels.real import agent_spec, evaluate_real
from dreamlab.worldmodels.rollouts import load_rollout, rollout_path
from dreamlab.worldmodels.training import LATENT_KEYS, encode_rollouts, latent_path

cli_main = load_experiment("worldmodels").main  # the command line: exit code 2 and one line on a user error


@pytest.fixture(scope="module")
def iterated(tmp_path_factory):
    """A smoke run with one round of iterative training (3 controller rollouts, 3 more M steps)."""
    root = tmp_path_factory.mktemp("iterative")
    argv = ["--preset", "smoke", "--threads", "1", "--workers", "0", "--run_dir", str(root / "run")]
    argv += ["--results_dir", str(root / "results"), "--iterations", "1", "--iteration_rollouts", "3"]
    argv += ["--iteration_m_steps", "3"]
    return root, argv, cli_main(argv)


def test_a_round_records_the_tested_controllers_real_episodes_and_retrains_m_and_c(iterated):
    root, _, out = iterated
    run = root / "run"
    result = json.loads(Path(out["result"]).read_text())
    rounds = result["metrics"]["rounds"]
    assert [r["controller_rollouts"] for r in rounds] == [0, 3]
    assert {"collect round 1", "encode round 1", "M round 1", "C round 1", "evaluate round 1"} <= set(
        result["stage_seconds"]
    )
    assert result["metrics"]["real_mean"] == rounds[1]["real_mean"] and len(out["real_episode_returns"]) == 4
    assert (run / "mdnrnn_round1.pt").is_file() and (run / "cmaes_round1.pt").is_file()
    # The rollouts are round 0's tested controller playing whole episodes on the round's own seeds: replaying that
    # controller on those seeds gives the same episodes, step for step.
    folder = run / "rollouts_round1"
    manifest = read_manifest(folder)
    assert manifest["round"] == 1 and manifest["first_seed"] == ITERATION_SEED_BASE + pipeline.ITERATION_BLOCK
    rollouts = [load_rollout(rollout_path(folder, i)) for i in range(3)]
    assert sum(len(r["frames"]) for r in rollouts) == rounds[1]["controller_rollout_steps"]
    loaded_round0 = _round0_agent(run)
    agent, params = loaded_round0
    with WorkerPool(0) as pool:
        replay = evaluate_real(agent, params, [manifest["first_seed"]], pool, 100, record_first=True)[0]
    first = rollouts[0]
    assert replay.steps == len(first["frames"]) and replay.episode_return == pytest.approx(first["rewards"].sum())
    np.testing.assert_array_equal(replay.frames, first["frames"])
    assert first["actions"].dtype == np.int64 and first["dones"][-1] == (len(first["frames"]) < 100)


def _round0_agent(run: Path):
    """Round 0's tested agent, from the run's checkpoints (the smoke preset tests the last CMA-ES mean)."""
    config = WorldModelsConfig(**json.loads((run / "config.json").read_text()))
    vae = pipeline.ConvVAE(config.z_dim)
    vae.load_state_dict(load_checkpoint(run / "vae.pt")["state"]["model"])
    model = pipeline.build_m(config)
    model.load_state_dict(load_checkpoint(run / "mdnrnn.pt")["state"]["model"])
    es = load_checkpoint(run / "cmaes.pt")["state"]["es"]
    assert load_checkpoint(run / "evaluation.pt")["state"]["generation"] == es["generation"]  # --final_controller last
    params = np.asarray(es["mean"])
    spec = agent_spec(config.task, vae, model, config.hidden_size, config.core, {}, config.include_cell)
    return spec, params


def test_the_rounds_resume_and_load_as_the_last_rounds_world_model(iterated):
    root, argv, out = iterated
    again = cli_main(argv)
    assert again["real_episode_returns"] == out["real_episode_returns"] and again["rounds"] == out["rounds"]
    world = WorldModel.load(root / "run")
    round1 = load_checkpoint(root / "run" / "mdnrnn_round1.pt")["state"]["model"]
    assert all(torch.equal(world.model.state_dict()[k], v) for k, v in round1.items())
    assert len(world.initial_mu) == 4 + 3  # dreams start from the random and the controller rollouts


def test_rollouts_of_another_controller_are_refused(iterated, tmp_path):
    root, _, _ = iterated
    agent, params = _round0_agent(root / "run")
    folder = tmp_path / "rollouts"
    with WorkerPool(0) as pool:
        collect_controller_rollouts(agent, params, folder, [5, 6], pool, 20, {"agent": "a"})
        assert len(list(folder.glob("rollout_*.npz"))) == 2
        with pytest.raises(UserError, match="another controller.*agent 'a' -> 'b'"):
            collect_controller_rollouts(agent, params, folder, [5, 6], pool, 20, {"agent": "b"})


def test_collection_writes_the_latents_that_v_would_encode(iterated, tmp_path):
    root, _, _ = iterated
    agent, params = _round0_agent(root / "run")
    vae = pipeline.ConvVAE(agent.z_dim)
    vae.load_state_dict(load_checkpoint(root / "run" / "vae.pt")["state"]["model"])
    rollouts, latents = tmp_path / "rollouts", tmp_path / "latents"
    with WorkerPool(0) as pool:
        paths = collect_controller_rollouts(
            agent, params, rollouts, [7, 8], pool, 30, {"agent": "a"}, games=2, latent_folder=lambda _: latents
        )
    collected = [load_npz(latent_path(latents, i), LATENT_KEYS) for i in range(2)]
    encoded = [load_npz(path, LATENT_KEYS) for path in encode_rollouts(vae, paths, tmp_path / "encoded")]
    for ours, theirs in zip(collected, encoded, strict=True):
        np.testing.assert_array_equal(ours["actions"], theirs["actions"])
        np.testing.assert_array_equal(ours["dones"], theirs["dones"])
        for key in ("mu", "logvar"):
            assert ours[key].dtype == np.float32
            np.testing.assert_allclose(ours[key], theirs[key], rtol=0, atol=1e-4)
    # encode_rollouts keeps finished latent files: a round whose collection wrote them skips V.
    before = latent_path(latents, 0).stat().st_mtime_ns
    encode_rollouts(vae, paths, latents)
    assert latent_path(latents, 0).stat().st_mtime_ns == before


def test_iterations_need_the_dream(capsys):
    with pytest.raises(SystemExit) as refused:
        cli_main(["--preset", "smoke", "--task", "carracing", "--train_in", "real", "--iterations", "1"])
    assert refused.value.code == 2 and "--iterations retrains M for the dream" in capsys.readouterr().err
