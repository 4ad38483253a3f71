"""Many PixelCopter games advanced together, a compiled pass over them per step: a native gymnasium ``VectorEnv``.

Each game keeps only what varies between games: the player's y and momentum, the block ahead and the block just
passed, the step count since reset and a ring of terrain heights. Column positions are the same in every game at
the same step count, so collisions, scoring and drawing of terrain read a precomputed
:class:`~dreamlab.envs.pixelcopter.rules.TerrainSchedule` instead of moving 61 columns per game.

Seeding guarantee: game ``i`` owns one ``np.random.Generator`` and consumes it exactly as
:class:`~dreamlab.envs.pixelcopter.env.PixelCopterEnv` consumes ``np_random``. After ``reset(seed=s)``, game ``i``
plays the same games (observations, rewards, terminations for the same actions) as a ``PixelCopterEnv`` reset
with ``seed=s + i`` and then reset without a seed after every episode - gymnasium's ``SyncVectorEnv`` convention.
A list of seeds seeds game ``i`` with ``seeds[i]``; ``None`` (or no seed) keeps a game's generator running, or
draws fresh entropy the first time. Seeds and actions are checked as :class:`PixelCopterEnv` checks them
(:mod:`dreamlab.envs.checks`): a bad seed raises :class:`~dreamlab.envs.checks.SeedError`, a float or bool action
array a ``ValueError``.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from dreamlab.envs.checks import check_int, check_vector_seeds
from dreamlab.envs.pixelcopter import kernels
from dreamlab.envs.pixelcopter import rules as R
from dreamlab.envs.pixelcopter.env import STATE_KEYS, check_render_mode, observation_space

_RING = kernels.RING


class PixelCopterVectorEnv(VectorEnv):
    """``num_envs`` PixelCopter games stepped together; the rules of :class:`PixelCopterEnv`, vectorised.

    Observations are (num_envs, 48, 48, 3) uint8 (``obs_type="pixels"``, drawn in one batch) or (num_envs, 7)
    float32 game states. ``autoreset_mode`` is gymnasium's: ``NEXT_STEP`` (default; the step after an episode
    ends returns the new game's first observation with reward 0), ``SAME_STEP`` (the new game starts in the
    same step; ``info["final_obs"]`` holds the last observations) or ``DISABLED`` (reset finished games with
    ``reset(options={"reset_mask": mask})``). ``max_episode_steps`` truncates episodes, as ``TimeLimit`` does.
    ``uniform_buffer`` uniforms are drawn ahead per game so that draws for many games are one gather.

    Moves and screens are numba kernels (:mod:`.kernels`), compiled on first use and cached; resets and terrain
    batches are numpy. Pixel observations are drawn incrementally into one buffer (only the pixels that changed
    are written).
    ``copy=True`` (default, as gymnasium's vector envs) returns a new array from every ``reset`` and ``step``, which
    the caller may keep; ``copy=False`` returns a read-only view of the buffer itself, which the next ``reset`` or
    ``step`` overwrites: faster (no 7 MB copy per step at 1024 games) for loops that use each observation before
    stepping again, and wrong for code that stores observations without copying them (a replay buffer).
    """

    def __init__(
        self,
        num_envs: int,
        obs_type: str = "pixels",
        render_mode: str | None = None,
        max_episode_steps: int | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        uniform_buffer: int = 1024,
        copy: bool = True,
    ) -> None:
        n = check_int(num_envs, "num_envs", 1)
        if max_episode_steps is not None:
            max_episode_steps = check_int(max_episode_steps, "max_episode_steps (or None)", 1)
        # one reset's draws must fit
        uniform_buffer = check_int(uniform_buffer, "uniform_buffer", R.BLOCK_DRAWS + R.TERRAIN_DRAWS)
        check_render_mode(render_mode)
        if not isinstance(copy, bool | np.bool_):
            raise ValueError(f"copy must be True or False, got {copy!r}")
        try:
            autoreset_mode = AutoresetMode(autoreset_mode)
        except ValueError as error:
            modes = [m.value for m in AutoresetMode]
            raise ValueError(f"unknown autoreset_mode {autoreset_mode!r}; choose from {modes}") from error
        self.schedule = R.terrain_schedule()
        if self.schedule.max_alive > _RING:
            raise RuntimeError(f"{self.schedule.max_alive} live columns do not fit the terrain ring of {_RING}")

        self.num_envs = n
        self.obs_type = obs_type
        self.render_mode = render_mode
        self.max_episode_steps = max_episode_steps
        self.autoreset_mode = autoreset_mode
        self.metadata = {"render_modes": ["rgb_array"], "render_fps": R.FPS, "autoreset_mode": autoreset_mode}
        self.single_observation_space = observation_space(obs_type)
        self.observation_space = batch_space(self.single_observation_space, n)
        self.single_action_space = gym.spaces.Discrete(2)
        self.action_space = batch_space(self.single_action_space, n)

        self._t = np.zeros(n, dtype=np.int64)
        self._y = np.zeros(n)
        self._vel = np.zeros(n)
        # Column 0: the block ahead (always present); column 1: the block that last passed the player, kept
        # (``_block_on``) until it leaves the screen. PLE never holds more than these two: a passed block is
        # gone ~32 steps after passing, while a new one needs >= 50 steps to reach the player.
        self._block_x = np.zeros((n, 2))
        self._block_y = np.zeros((n, 2))
        self._block_on = np.zeros((n, 2), dtype=bool)
        self._ring = np.zeros((n, _RING))
        self._ring_base = np.arange(n, dtype=np.int64) * _RING
        self._needs_reset = np.zeros(n, dtype=bool)
        self._started = False

        # Screens: drawn incrementally into one buffer (see _update_screens), with the bit masks they show.
        self.copy = bool(copy)
        self._screens: np.ndarray | None = None
        self._screen_bits: tuple[np.ndarray, np.ndarray] = ()
        # the drawing kernel takes the columns on screen to run from the first over pixel column 0 to the last
        # over pixel column W - 1
        cover = self.schedule.cover  # (T, W, 2) columns over each pixel column, -1 = none
        first = np.maximum(cover[:, :1, 0], 0)
        if (cover[:, :, 0] < first).any() or (cover.max(axis=(1, 2)) > cover[:, -1].max(axis=1)).any():
            raise RuntimeError("terrain schedule: a pixel column is bare or the columns on screen are out of x order")

        self._generators: list[np.random.Generator | None] = [None] * n
        self._uniforms = np.zeros((n, uniform_buffer))
        self._cursor = np.full(n, uniform_buffer, dtype=np.int64)

    # ----------------------------------------------------------------------------------------------- randomness
    def _refill_uniforms(self, env: int) -> None:
        """Move game ``env``'s unread uniforms to the front of its buffer and draw the rest from its generator."""
        size = self._uniforms.shape[1]
        unread = size - self._cursor[env]
        self._uniforms[env, :unread] = self._uniforms[env, self._cursor[env] :]
        self._uniforms[env, unread:] = self._generators[env].random(size - unread)
        self._cursor[env] = 0

    def _take(self, envs: np.ndarray, count: int) -> np.ndarray:
        """The next ``count`` uniforms of each game in ``envs`` (distinct indices), shape (len(envs), count)."""
        cursor = self._cursor[envs]
        short = cursor + count > self._uniforms.shape[1]
        if short.any():
            for env in envs[short]:
                self._refill_uniforms(int(env))
            cursor = self._cursor[envs]
        self._cursor[envs] = cursor + count
        return self._uniforms[envs[:, None], cursor[:, None] + np.arange(count)]

    # ------------------------------------------------------------------------------------------------- the game
    def _reset_games(self, envs: np.ndarray) -> None:
        """PLE's init() for the games ``envs``: a block first, then the first terrain batch (columns 0..47)."""
        u = self._take(envs, R.BLOCK_DRAWS + R.TERRAIN_DRAWS)
        self._block_x[envs, 0], self._block_y[envs, 0] = R.block_from_uniforms(u[:, 0], u[:, 1])
        self._block_on[envs] = (True, False)
        heights = R.terrain_from_uniforms(u[:, R.BLOCK_DRAWS], u[:, R.BLOCK_DRAWS + 1 :], R.FIRST_BATCH_X0)
        self._ring[envs, : R.BATCH_SIZE] = heights
        self._t[envs] = 0
        self._y[envs] = R.PLAYER_START_Y
        self._vel[envs] = 0.0
        self._needs_reset[envs] = False

    def _column_heights(self, envs: np.ndarray | slice, columns: np.ndarray, shift: np.ndarray) -> np.ndarray:
        """Terrain heights of global columns ``columns + shift`` of games ``envs``; garbage where columns is -1."""
        shift = shift.reshape(shift.shape + (1,) * (columns.ndim - 1))
        base = self._ring_base[envs].reshape(shift.shape)
        return self._ring.reshape(-1)[base + ((columns + shift) & (_RING - 1))]

    def _advance(self, climb: np.ndarray, live: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One PLE step for every game; only ``live`` games draw randomness. Returns (reward, terminated)."""
        # the compiled step replaces a passed block from the uniforms ahead: make sure every game has a block's
        short = np.flatnonzero(self._cursor > self._uniforms.shape[1] - R.BLOCK_DRAWS)
        for env in short:
            self._refill_uniforms(int(env))
        reward, hit = np.empty(self.num_envs), np.empty(self.num_envs, dtype=bool)
        schedule = self.schedule
        kernels.advance(
            climb,
            live,
            self._t,
            self._y,
            self._vel,
            self._block_x,
            self._block_y,
            self._block_on,
            self._ring,
            self._uniforms,
            self._cursor,
            schedule.touch,
            schedule.removed,
            schedule.cycle_start,
            schedule.period,
            schedule.index_shift,
            reward,
            hit,
        )
        # 8. a new terrain batch (numpy: its sines must be numpy's, as the single env's)
        row, shift = schedule.lookup(self._t)
        refill = live & (schedule.refill_base[row] >= 0)
        if refill.any():
            envs = np.flatnonzero(refill)
            u = self._take(envs, R.TERRAIN_DRAWS)
            first = schedule.refill_base[row[envs]] + shift[envs]
            slots = (first[:, None] + np.arange(R.BATCH_SIZE)) & (_RING - 1)
            self._ring[envs[:, None], slots] = R.terrain_from_uniforms(u[:, 0], u[:, 1:], R.REFILL_BATCH_X0)
        return reward, hit

    # ------------------------------------------------------------------------------------------- observations
    def game_state(self) -> dict[str, np.ndarray]:
        """PLE's ``getGameState()`` for every game: the keys of :meth:`PixelCopterEnv.game_state`, (num_envs,) each.

        The first touching column is the first by x: every column's rect spans y from y_t - 36 <= -6 to
        y_t + 36 >= 54, beyond anywhere a live player can be, so x-overlap decides touching.
        """
        self._check_started()
        row, shift = self.schedule.lookup(self._t)
        column_y = self._column_heights(slice(None), self.schedule.touch[row, 0], shift)
        block_y = self._block_y[:, 0].astype(np.int64)
        return {
            "player_y": self._y.copy(),
            "player_vel": self._vel.copy(),
            "player_dist_to_ceil": self._y - (column_y - R.GAP_HALF),
            "player_dist_to_floor": (column_y + R.GAP_HALF) - self._y,
            "next_gate_dist_to_player": self._block_x[:, 0] - R.PLAYER_X,
            "next_gate_block_top": block_y,
            "next_gate_block_bottom": block_y + R.BLOCK_HEIGHT,
        }

    # --------------------------------------------------------------------------------------------- the screen
    def _update_screens(self) -> np.ndarray:
        """Bring every game's screen up to date and return the (num_envs, 48, 48, 3) uint8 buffer.

        Only pixels whose colour changed since the last update are written (:func:`kernels.update_screens`).
        """
        if self._screens is None:  # drawn on first use: a state-observation env only draws for render()
            self._screens = np.zeros((self.num_envs, R.HEIGHT, R.WIDTH, 3), dtype=np.uint8)
            self._screen_bits = tuple(np.zeros((self.num_envs, R.WIDTH), dtype=np.int64) for _ in range(2))
        row, shift = self.schedule.lookup(self._t)
        kernels.update_screens(
            self._screens.reshape(self.num_envs, -1),
            *self._screen_bits,
            row,
            shift,
            self.schedule.cover,
            self._ring,
            self._block_x,
            self._block_y,
            self._block_on,
            self._y,
            kernels.TERRAIN_BITS,
            kernels.BLOCK_BITS,
            kernels.PLAYER_BITS,
            kernels.PALETTE,
            kernels.DE_BRUIJN_BIT,
        )
        return self._screens

    def _observe(self, envs: np.ndarray | None = None) -> np.ndarray:
        """Observations of all games, or a copy of those of games ``envs``."""
        if self.obs_type == "pixels":
            screens = self._update_screens()
            if envs is not None:
                return screens[envs]
            if self.copy:
                return screens.copy()
            view = screens.view()
            view.flags.writeable = False  # a write would also corrupt the next screens, drawn over this buffer
            return view
        state = self.game_state()
        observation = np.stack([state[key] for key in STATE_KEYS], axis=1).astype(np.float32)
        return observation if envs is None else observation[envs]

    # ------------------------------------------------------------------------------------------ gymnasium API
    def reset(
        self,
        *,
        seed: int | list[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset all games, or those in ``options["reset_mask"]`` (bool array); seeding as in the module doc."""
        n = self.num_envs
        seeds = check_vector_seeds(seed, n)
        if options is not None and not isinstance(options, dict):
            raise ValueError(f"options must be a dict or None, got {options!r}")
        mask = np.ones(n, dtype=bool)
        if options is not None and "reset_mask" in options:
            mask = options["reset_mask"]
            if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_ or mask.shape != (n,):
                raise ValueError(f"options['reset_mask'] must be a bool numpy array of shape ({n},), got {mask!r}")
            if not self._started and not mask.all():
                raise RuntimeError("the first reset() must reset every game; drop options['reset_mask']")
        envs = np.flatnonzero(mask)
        for env in envs:
            if seeds[env] is not None or self._generators[env] is None:
                self._generators[env] = seeding.np_random(seeds[env])[0]
                self._cursor[env] = self._uniforms.shape[1]  # drop uniforms of the previous generator
        self._reset_games(envs)
        self._started = True
        return self._observe(), {}

    def step(self, actions) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        self._check_started()
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs,):
            raise ValueError(f"expected actions of shape ({self.num_envs},), got {actions.shape}")
        # action_space.contains, less its acceptance of bools: floats and bools are refused whatever their value
        if not np.issubdtype(actions.dtype, np.integer):
            raise ValueError(f"actions must be integers 0 (up) or 1 (no-op), got dtype {actions.dtype}")
        climb = actions == R.ACTION_UP
        if not (climb | (actions == R.ACTION_NOOP)).all():
            raise ValueError(f"actions must be 0 (up) or 1 (no-op), got values {np.unique(actions)}")

        if self.autoreset_mode == AutoresetMode.DISABLED and self._needs_reset.any():
            finished = np.flatnonzero(self._needs_reset)
            raise RuntimeError(
                f"games {finished.tolist()} have ended and autoreset is disabled; "
                "reset them with reset(options={'reset_mask': mask})"
            )
        resetting = self._needs_reset.copy() if self.autoreset_mode == AutoresetMode.NEXT_STEP else None
        live = np.ones(self.num_envs, dtype=bool) if resetting is None else ~resetting
        reward, terminated = self._advance(climb, live)
        truncated = (
            np.zeros(self.num_envs, dtype=bool) if self.max_episode_steps is None else self._t >= self.max_episode_steps
        )
        info: dict[str, Any] = {}
        if resetting is not None:
            if resetting.any():
                envs = np.flatnonzero(resetting)
                self._reset_games(envs)
                reward[envs] = 0.0
                terminated[envs] = False
                truncated[envs] = False
            self._needs_reset = terminated | truncated
        elif self.autoreset_mode == AutoresetMode.SAME_STEP:
            done = terminated | truncated
            if done.any():
                envs = np.flatnonzero(done)
                final = np.full(self.num_envs, None, dtype=object)
                for env, observation in zip(envs, self._observe(envs), strict=True):
                    final[env] = observation
                self._reset_games(envs)
                info = {"final_obs": final, "_final_obs": done, "final_info": {}, "_final_info": done.copy()}
        else:
            self._needs_reset = terminated | truncated
        return self._observe(), reward, terminated, truncated, info

    # ------------------------------------------------------------------------------------------- checkpoints
    _STATE_ARRAYS = ("_t", "_y", "_vel", "_block_x", "_block_y", "_block_on", "_ring", "_needs_reset", "_uniforms")

    def state_dict(self) -> dict[str, Any]:
        """Every game's position, terrain, pending uniforms and generator state (plain arrays and dicts).

        After ``load_state_dict`` the games continue exactly as if never interrupted: same observations,
        rewards and episode ends for the same actions, including the episodes that start later.
        """
        self._check_started()
        state: dict[str, Any] = {name.lstrip("_"): getattr(self, name).copy() for name in self._STATE_ARRAYS}
        state["cursor"] = self._cursor.copy()
        state["generators"] = [generator.bit_generator.state for generator in self._generators]
        state["autoreset_mode"] = self.autoreset_mode.value
        state["max_episode_steps"] = 0 if self.max_episode_steps is None else self.max_episode_steps
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` taken from a PixelCopterVectorEnv with the same settings and num_envs."""
        names = [name.lstrip("_") for name in self._STATE_ARRAYS]
        missing = [
            key for key in (*names, "cursor", "generators", "autoreset_mode", "max_episode_steps") if key not in state
        ]
        if missing:
            raise ValueError(f"PixelCopterVectorEnv state is missing {missing}")
        settings = {"autoreset_mode": self.autoreset_mode.value, "max_episode_steps": self.max_episode_steps or 0}
        for key, expected in settings.items():
            if state[key] != expected:
                raise ValueError(f"PixelCopterVectorEnv state has {key}={state[key]!r}, this env has {expected!r}")
        if len(state["generators"]) != self.num_envs:
            raise ValueError(f"a state of {len(state['generators'])} games cannot load into {self.num_envs} games")
        arrays = {}
        for name, key in zip(self._STATE_ARRAYS, names, strict=True):
            value, current = np.asarray(state[key]), getattr(self, name)
            if value.shape != current.shape:
                raise ValueError(
                    f"PixelCopterVectorEnv state {key!r} has shape {value.shape}, expected {current.shape}"
                )
            arrays[name] = value.astype(current.dtype, copy=True)
        generators = []
        for generator_state in state["generators"]:
            generator = np.random.Generator(getattr(np.random, generator_state["bit_generator"])())
            generator.bit_generator.state = generator_state
            generators.append(generator)
        for name, value in arrays.items():
            setattr(self, name, value)
        self._cursor = np.asarray(state["cursor"], dtype=np.int64).copy()
        self._generators = generators
        self._screens = None  # redrawn from scratch at the next observation
        self._started = True

    def render(self) -> tuple[np.ndarray, ...] | None:
        if self.render_mode != "rgb_array":
            return None
        self._check_started()
        return tuple(self._update_screens().copy())

    def _check_started(self) -> None:
        if not self._started:
            raise RuntimeError("call reset() before stepping or observing PixelCopterVectorEnv")
