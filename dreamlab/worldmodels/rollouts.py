"""Random-policy rollouts, one compressed ``.npz`` per episode, written atomically and resumable.

File format (``rollout_NNNNNN.npz`` in the rollout folder, ``N`` the rollout index):

- ``frames``  uint8 (T, 64, 64, 3): the observation at which each action was taken (frames[0] after reset);
- ``actions`` int64 (T,) for discrete tasks, float32 (T, A) for continuous ones: the action taken at each step;
- ``rewards`` float32 (T,): the reward that followed each action;
- ``dones``   bool (T,): True only at the last step of an episode that terminated (death in Doom); an episode cut
  by the time limit ends with False, because nothing in the game ended it.

Rollout ``i`` is generated from seed ``seed * 1_000_003 + i``, so re-running skips finished files and
re-creates a damaged one exactly. The random policy keeps its previous action with probability
``repeat_probability`` and otherwise draws a new one, as the original implementations do: a policy that
changes action every step jitters in place and never sees the states a controller reaches.

The folder's ``manifest.json`` records what rollout ``i`` is made from (task, seed, repeat_probability,
max_steps): collecting into a folder of other settings is refused, naming them, so rollouts of two configs never
mix (:mod:`dreamlab.worldmodels.provenance` says how a folder written before manifests is adopted).
"""

from __future__ import annotations

import dataclasses
import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dreamlab.files import atomic_write_bytes, load_npz, npz_bytes
from dreamlab.parallel import WorkerPool
from dreamlab.runs import UserError
from dreamlab.worldmodels.provenance import differences, read_manifest, write_manifest
from dreamlab.worldmodels.tasks import get_task

ROLLOUT_KEYS = ("frames", "actions", "rewards", "dones")


def rollout_path(folder: str | os.PathLike, index: int) -> Path:
    return Path(folder) / f"rollout_{index:06d}.npz"


def rollout_seed(seed: int, index: int) -> int:
    return seed * 1_000_003 + index


@dataclass(frozen=True)
class RolloutJob:
    """Everything a worker needs to produce one rollout file (a picklable description, not an env)."""

    task: str
    index: int
    seed: int
    folder: str
    repeat_probability: float
    max_episode_steps: int


@dataclass(frozen=True)
class RolloutSummary:
    index: int
    steps: int
    episode_return: float
    terminated: bool


def play_rollout(job: RolloutJob) -> dict[str, np.ndarray]:
    """Play one random-policy episode: the arrays of its rollout file."""
    task = get_task(job.task)
    rng = np.random.default_rng(rollout_seed(job.seed, job.index))
    env = task.make_env(job.max_episode_steps)
    try:
        observation, _ = env.reset(seed=int(rng.integers(2**31 - 1)))
        frames, actions, rewards = [], [], []
        action = task.random_action(rng)
        terminated = truncated = False
        while not (terminated or truncated):
            if rng.random() >= job.repeat_probability:
                action = task.random_action(rng)
            frames.append(observation)
            actions.append(action)
            observation, reward, terminated, truncated, _ = env.step(action.item() if task.discrete else action)
            rewards.append(reward)
    finally:
        env.close()
    dones = np.zeros(len(frames), dtype=bool)
    dones[-1] = terminated
    return {
        "frames": np.stack(frames).astype(np.uint8),
        "actions": np.stack(actions),
        "rewards": np.asarray(rewards, dtype=np.float32),
        "dones": dones,
    }


def collect_rollout(job: RolloutJob) -> tuple[RolloutSummary, bytes]:
    """Play one random-policy episode: its summary and the bytes of its rollout file (a compressed ``.npz``).

    The worker returns the file rather than writing it, so that on a cluster every rollout lands in the driver's
    folder (worker nodes need no shared file system) and only the driver, which holds the data-dir lock, writes.
    """
    data = play_rollout(job)
    steps = len(data["dones"])
    summary = RolloutSummary(job.index, steps, float(data["rewards"].sum()), bool(data["dones"][-1]))
    return summary, rollout_bytes(data)


def rollout_bytes(data: dict[str, np.ndarray]) -> bytes:
    """A rollout file's bytes (a compressed ``.npz`` of ``ROLLOUT_KEYS``), for the driver to write atomically."""
    return npz_bytes(**{k: data[k] for k in ROLLOUT_KEYS})


def load_rollout(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """One rollout's arrays, checked: an error names the file if it is damaged or inconsistent."""
    data = load_npz(path, ROLLOUT_KEYS)
    length = len(data["frames"])
    if length == 0 or any(len(data[k]) != length for k in ROLLOUT_KEYS):
        shapes = {k: data[k].shape for k in ROLLOUT_KEYS}
        raise ValueError(f"{path}: inconsistent rollout arrays {shapes}")
    if data["frames"].dtype != np.uint8 or data["frames"].shape[1:] != (64, 64, 3):
        raise ValueError(
            f"{path}: frames must be uint8 (T, 64, 64, 3), got {data['frames'].dtype} {data['frames'].shape}"
        )
    return data


def is_intact(path: str | os.PathLike) -> bool:
    """Whether a rollout file is complete: its zip directory, which is written last, reads and lists every key.

    This is cheap (no frame is decompressed), so re-running a pipeline over thousands of rollouts starts at once.
    A write cut short loses the directory; damage inside a finished file fails the members' CRCs when the file
    is read, and :func:`load_rollout` names the file.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            return set(ROLLOUT_KEYS) <= {Path(n).stem for n in archive.namelist()}
    except (zipfile.BadZipFile, OSError, EOFError):
        return False


def collect_rollouts(
    task: str,
    folder: str | os.PathLike,
    count: int,
    seed: int,
    pool: WorkerPool,
    repeat_probability: float = 0.9,
    max_episode_steps: int | None = None,
    log=print,
) -> list[Path]:
    """Make sure ``folder`` holds rollouts 0..count-1, collecting only the missing ones on ``pool``.

    Existing files are checked first (their zip directory); a damaged one is reported by name, renamed to
    ``*.corrupt`` so it is never read, and collected again from its seed.
    """
    if count < 1:
        raise ValueError(f"need at least one rollout, got count={count}")
    if not 0.0 <= repeat_probability < 1.0:
        raise ValueError(f"repeat_probability must be in [0, 1), got {repeat_probability}")
    spec = get_task(task)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    max_episode_steps = max_episode_steps or spec.max_episode_steps
    template = RolloutJob(task, 0, seed, str(folder), repeat_probability, max_episode_steps)
    check_manifest(template, log)
    paths = [rollout_path(folder, i) for i in range(count)]
    missing = missing_rollouts(paths, log)
    if missing:
        log(f"collecting {len(missing)} of {count} rollouts into {folder}")
        jobs = [dataclasses.replace(template, index=i) for i in missing]
        # Submitted in blocks so that a kill loses at most one block's unfinished episodes and progress shows.
        block = max(1, 8 * max(1, pool.workers))
        steps = 0
        for start in range(0, len(jobs), block):
            for summary, payload in pool.map(collect_rollout, jobs[start : start + block]):
                atomic_write_bytes(rollout_path(folder, summary.index), payload)
                steps += summary.steps
            done = min(start + block, len(jobs))
            log(f"  {done}/{len(jobs)} rollouts collected ({steps} steps)")
    return paths


def missing_rollouts(paths: Sequence[Path], log=print) -> list[int]:
    """The indices of ``paths`` to collect: absent files, and damaged ones (reported by name and renamed to
    ``*.corrupt`` so that they are never read)."""
    for path in (p for p in paths if p.is_file()):
        if not is_intact(path):
            log(f"rollout file {path} is truncated or corrupt; moving it to {path}.corrupt and collecting it again")
            os.replace(path, f"{path}.corrupt")
    return [i for i, p in enumerate(paths) if not p.is_file()]


def rollout_lengths(paths: Sequence[str | os.PathLike]) -> np.ndarray:
    """Episode lengths read from the ``dones`` arrays (cheap: frames are not decompressed)."""
    lengths = []
    for path in paths:
        with np.load(path, allow_pickle=False) as data:
            lengths.append(len(data["dones"]))
    return np.asarray(lengths, dtype=np.int64)


def manifest_of(job: RolloutJob) -> dict[str, object]:
    """What every rollout of ``job``'s folder is made from; rollout ``i`` is a function of these and ``i``."""
    return {
        "task": job.task,
        "seed": job.seed,
        "repeat_probability": job.repeat_probability,
        "max_steps": job.max_episode_steps,
    }


def check_manifest(template: RolloutJob, log=print) -> None:
    """Refuse a rollout folder made with other settings (:class:`UserError` naming them); write the manifest of a
    new folder; adopt a folder written before manifests only if its rollouts verify (:func:`verify_rollouts`)."""
    folder, expected = Path(template.folder), manifest_of(template)
    saved = read_manifest(folder)
    if saved is not None:
        changed = differences(saved, expected)
        if changed:
            raise UserError(
                f"{folder} holds rollouts of other settings ({', '.join(changed)}); pass another --data_dir "
                f"(or --run_dir), or delete {folder} to collect afresh"
            )
        return
    existing = sorted(int(p.stem.split("_")[1]) for p in folder.glob("rollout_*.npz") if is_intact(p))
    if existing:
        problem = verify_rollouts(template, existing)
        if problem:
            raise UserError(
                f"{folder} holds {len(existing)} rollouts without a manifest that this run's settings do not "
                f"reproduce ({problem}); delete {folder} to collect afresh, or pass another --data_dir"
            )
        log(f"{folder}: {len(existing)} rollouts written before manifests verify against this run's settings")
    write_manifest(folder, expected)


def verify_rollouts(template: RolloutJob, indices: Sequence[int]) -> str | None:
    """Why the rollouts ``indices`` of ``template.folder`` are not what ``template``'s settings make, or ``None``.

    Every episode must fit the cap (one that did not terminate is exactly ``max_episode_steps`` long, none is
    longer), and the first and last rollouts must replay byte for byte from their seeds.
    """
    for index in indices:
        path = rollout_path(template.folder, index)
        with np.load(path, allow_pickle=False) as data:
            dones = data["dones"]
        length, cap = len(dones), template.max_episode_steps
        if length > cap or (not dones[-1] and length != cap):
            return f"{path.name} has {length} steps, the cap is max_steps {cap}"
    for index in sorted({indices[0], indices[-1]}):
        replay = play_rollout(dataclasses.replace(template, index=index))
        stored = load_rollout(rollout_path(template.folder, index))
        if any(not np.array_equal(replay[k], stored[k]) for k in ROLLOUT_KEYS):
            return f"{rollout_path(template.folder, index).name} differs from its replay"
    return None
