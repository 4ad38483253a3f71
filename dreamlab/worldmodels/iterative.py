"""Rollouts of a trained controller, for Ha & Schmidhuber's iterative training (World Models, 2018, section 5).

Random rollouts show M only what a random policy meets: in Doom Take Cover it lives ~350 frames on average, so
M has seen few of the states that a controller which survives ~800 frames reaches, and its dream is least
faithful where C's score is decided. The paper's remedy, its "iterative training procedure": roll out the evolved C in
the real environment, train M on those rollouts as well, evolve C again in the improved dream, and repeat.
:func:`collect_controller_rollouts` is the first step of a round; the pipeline (``--iterations``) runs the rounds.

A round's rollouts are files of the random rollouts' format (:mod:`dreamlab.worldmodels.rollouts`) in a folder of
their own, whose manifest names the agent that played them (the fingerprint of V, M and C): collecting into a
folder that another agent filled is refused, so M never trains on a controller's data under another's name.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dreamlab.files import atomic_write_bytes
from dreamlab.parallel import WorkerPool
from dreamlab.runs import UserError
from dreamlab.worldmodels.provenance import differences, read_manifest, write_manifest
from dreamlab.worldmodels.real import AgentSpec, record_rollouts
from dreamlab.worldmodels.rollouts import missing_rollouts, rollout_path
from dreamlab.worldmodels.training import latent_path


def collect_controller_rollouts(
    agent: AgentSpec,
    params: np.ndarray,
    folder: str | os.PathLike,
    seeds: Sequence[int],
    pool: WorkerPool,
    max_steps: int,
    made_from: dict[str, Any],
    games: int = 1,
    env_options: dict[str, Any] | None = None,
    log: Callable[[str], None] = print,
    latent_folder: Callable[[Path], Path] | None = None,
) -> list[Path]:
    """Make sure ``folder`` holds one rollout of controller ``params`` per episode seed (rollout i from seeds[i]),
    collecting only the missing ones. ``made_from`` (the agent's fingerprint, the round, ...) becomes the folder's
    manifest with ``seeds[0]`` and ``max_steps``; a folder whose manifest differs is refused (:class:`UserError`).
    Episodes are whole: never cut short, whatever C's training used.

    With ``latent_folder`` (the latents' folder of a rollout folder, asked once the manifest is written), each
    collected episode's latent file is written there too, from the (mu, logvar) that the agent's V computed to
    act: `training.encode_rollouts` then finds them done instead of running V over the frames again (float32 on
    the workers' CPU: within float rounding of encoding them afterwards). It is the agent's V that must key it."""
    folder = Path(folder)
    expected = {**made_from, "task": agent.task, "first_seed": int(seeds[0]), "max_steps": max_steps}
    saved = read_manifest(folder)
    if saved is not None and differences(saved, expected):
        raise UserError(
            f"{folder} holds rollouts of another controller or settings ({', '.join(differences(saved, expected))}); "
            f"delete {folder} and the later rounds' checkpoints to collect afresh"
        )
    folder.mkdir(parents=True, exist_ok=True)
    if saved is None:
        write_manifest(folder, expected)
    paths = [rollout_path(folder, i) for i in range(len(seeds))]
    latents = None if latent_folder is None else latent_folder(folder)
    missing = missing_rollouts(paths, log)
    if missing:
        log(f"collecting {len(missing)} of {len(seeds)} controller rollouts into {folder}")
    # In blocks, so that a kill loses at most one block and the driver holds one block's files at a time.
    block = 4 * games * max(1, pool.workers)
    steps = 0
    for start in range(0, len(missing), block):
        indices = missing[start : start + block]
        results = record_rollouts(agent, params, [seeds[i] for i in indices], pool, max_steps, games, env_options)
        for index, result in zip(indices, results, strict=True):
            atomic_write_bytes(paths[index], result.rollout)
            if latents is not None:
                atomic_write_bytes(latent_path(latents, index), result.latents)
            steps += result.steps
        log(f"  {start + len(indices)}/{len(missing)} controller rollouts collected ({steps} steps)")
    return paths
