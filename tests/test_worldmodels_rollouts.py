"""The rollout store: documented format, atomic files, skipping finished rollouts, damaged files never used."""

import os

import numpy as np
import pytest

from dreamlab.parallel import WorkerPool
from dreamlab.worldmodels import collect_rollouts, get_task, is_intact, load_rollout


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rollouts")
    with WorkerPool(0) as pool:
        paths = collect_rollouts("doom", folder, 2, seed=3, pool=pool, max_episode_steps=60, log=lambda _: None)
    return folder, paths


def test_rollout_format(store):
    _, paths = store
    data = load_rollout(paths[0])
    steps = len(data["frames"])
    assert data["frames"].dtype == np.uint8 and data["frames"].shape == (steps, 64, 64, 3)
    assert data["actions"].dtype == np.int64 and data["actions"].shape == (steps,)
    assert set(np.unique(data["actions"])) <= {0, 1, 2}
    assert data["rewards"].shape == (steps,) and (data["rewards"] == 1).all()  # Take Cover: +1 per tic alive
    assert data["dones"].dtype == bool and not data["dones"][:-1].any()
    # Only a death ends an episode with done; the 60-step cap does not.
    assert data["dones"][-1] == (steps < 60)


def test_rerun_skips_finished_rollouts(store):
    folder, paths = store
    before = [os.stat(p).st_mtime_ns for p in paths]
    messages = []
    with WorkerPool(0) as pool:
        collect_rollouts("doom", folder, 2, seed=3, pool=pool, max_episode_steps=60, log=messages.append)
    assert [os.stat(p).st_mtime_ns for p in paths] == before
    assert not any("collecting" in m for m in messages)


def test_damaged_rollout_is_named_never_used_and_recollected(store):
    folder, paths = store
    original = load_rollout(paths[1])
    data = paths[1].read_bytes()
    paths[1].write_bytes(data[: len(data) // 2])  # a write cut short
    assert not is_intact(paths[1])
    with pytest.raises(ValueError, match=paths[1].name):
        load_rollout(paths[1])
    messages = []
    with WorkerPool(0) as pool:
        collect_rollouts("doom", folder, 2, seed=3, pool=pool, max_episode_steps=60, log=messages.append)
    assert any(paths[1].name in m and "corrupt" in m for m in messages)
    assert (folder / f"{paths[1].name}.corrupt").is_file()
    again = load_rollout(paths[1])  # collected again from the same seed: the same episode
    assert all(np.array_equal(again[k], original[k]) for k in original)
    assert not list(folder.glob(".*.tmp"))  # no temporary files left behind


def test_damage_inside_a_finished_rollout_is_named_when_read(store):
    _, paths = store
    data = bytearray(paths[0].read_bytes())
    data[len(data) // 3] ^= 0xFF  # a flipped byte inside the compressed frames
    paths[0].write_bytes(bytes(data))
    with pytest.raises(ValueError, match=paths[0].name):
        load_rollout(paths[0])


def test_bad_arguments_are_named(tmp_path):
    with WorkerPool(0) as pool:
        with pytest.raises(ValueError, match="unknown World Models task"):
            collect_rollouts("pong", tmp_path, 1, seed=0, pool=pool)
        with pytest.raises(ValueError, match="repeat_probability"):
            collect_rollouts("doom", tmp_path, 1, seed=0, pool=pool, repeat_probability=1.0)
    with pytest.raises(FileNotFoundError):
        load_rollout(tmp_path / "missing.npz")
    assert get_task("doom").discrete


def test_take_cover_makes_vizdoom_work_dir_before_the_game_starts(tmp_path, monkeypatch):
    # Rollout workers start games at once; ViZDoom kills the process when two of them race to create ./_vizdoom/.
    from dreamlab.envs import doom

    class GameStarted(Exception):
        pass

    def start_game(*args, **kwargs):
        assert os.path.isdir(doom.VIZDOOM_WORK_DIR)
        raise GameStarted

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(doom.gym, "make", start_game)
    with pytest.raises(GameStarted):
        doom.make_take_cover()
