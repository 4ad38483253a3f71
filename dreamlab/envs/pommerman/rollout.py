"""Playing, recording and loading whole games.

A game record is the JSON object of the playground recordings in ``shared/reference`` (one per line of a
``.jsonl.gz``): ``policy``, ``seed``, ``initial_state`` (a JSON snapshot), ``steps`` (``actions``, ``state``,
``rewards``, ``done`` per step), ``result`` (``"Result.Win"`` or ``"Result.Tie"``) and ``winners``.
"""

from __future__ import annotations

import gzip
import json
import os
import time
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dreamlab.envs.checks import check_int
from dreamlab.envs.pommerman.agents import Agent, check_agents, make_agents
from dreamlab.envs.pommerman.env import Pommerman
from dreamlab.files import atomic_write_bytes

RECORD_KEYS = ("policy", "seed", "initial_state", "steps", "result", "winners")


def play_game(
    env: Pommerman, agents: Sequence[Agent], seed: int | None = None, record: bool = False, policy: str = ""
) -> dict[str, Any]:
    """Play one game to the end. Returns ``{"length", "rewards", "result", "winners"}`` and, with ``record``,
    the full record (``policy``, ``seed``, ``initial_state``, ``steps``) in the recordings' format."""
    check_agents(agents)
    obs = env.reset(seed=seed)
    for agent in agents:
        agent.reset()
    steps: list[dict[str, Any]] = []
    initial_state = env.get_json_info() if record else None
    done = False
    length = 0
    while not done:
        actions = env.act(agents, obs)
        obs, rewards, done, info = env.step(actions)
        length += 1
        if record:
            steps.append({"actions": actions, "state": env.get_json_info(), "rewards": rewards, "done": done})
    game: dict[str, Any] = {
        "length": length,
        "rewards": rewards,
        "result": f"Result.{info['result'].name}",
        "winners": info.get("winners"),
    }
    if record:
        game.update(policy=policy, seed=seed, initial_state=initial_state, steps=steps)
    return game


def play_games(policy: str, seed: int, min_steps: int) -> dict[str, Any]:
    """Play whole games of ``policy`` agents on seeds ``seed, seed + 1, ...`` until at least ``min_steps`` steps.

    Returns counts, timings and outcomes; a top-level function so worker pools can run it.
    """
    seed = check_int(seed, "seed", 0)
    min_steps = check_int(min_steps, "min_steps", 1)
    env = Pommerman()
    agents = make_agents(policy, seed=seed)
    start, start_cpu = time.perf_counter(), time.process_time()
    steps, lengths, wins, ties = 0, [], 0, 0
    game_seed = seed
    while steps < min_steps:
        game = play_game(env, agents, seed=game_seed)
        steps += game["length"]
        lengths.append(game["length"])
        wins += game["result"] == "Result.Win"
        ties += game["result"] == "Result.Tie"
        game_seed += 1
    return {
        "policy": policy,
        "steps": steps,
        "games": len(lengths),
        "wins": wins,
        "ties": ties,
        "mean_game_length": steps / len(lengths),
        "wall_seconds": time.perf_counter() - start,
        "cpu_seconds": time.process_time() - start_cpu,
    }


def load_games(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Game records from a ``.jsonl.gz`` (or ``.jsonl``) file, with a clear error for missing or corrupt files."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no Pommerman game recordings at {path}")
    opener = gzip.open if path.suffix == ".gz" else open
    games = []
    try:
        with opener(path, "rt", encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    game = json.loads(line)
                except json.JSONDecodeError as error:
                    raise ValueError(f"{path} line {number} is not valid JSON: {error}") from error
                missing = [key for key in RECORD_KEYS if key not in game]
                if missing:
                    raise ValueError(f"{path} line {number}: game record lacks {missing}")
                games.append(game)
    except (OSError, EOFError, zlib.error) as error:
        raise ValueError(f"{path} is not a readable (gzip) JSON-lines file: {error}") from error
    return games


def save_games(path: str | os.PathLike, games: Sequence[dict[str, Any]]) -> Path:
    """Write game records as gzipped JSON lines (atomically: a temporary file renamed into place)."""
    missing = [key for game in games for key in RECORD_KEYS if key not in game]
    if missing:
        raise ValueError(f"game records lack {sorted(set(missing))}; record them with play_game(..., record=True)")
    text = "".join(json.dumps({key: game[key] for key in RECORD_KEYS}) + "\n" for game in games)
    return atomic_write_bytes(Path(path), gzip.compress(text.encode("utf-8")))
