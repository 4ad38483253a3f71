"""Many PixelCopter games advanced by one numpy computation: a native gymnasium ``VectorEnv``.

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
from dreamlab.envs.pixelcopter import rules as R
from dreamlab.envs.pixelcopter.env import STATE_KEYS, check_render_mode, observation_space

_RING = 64  # terrain heights per game, indexed by global column index mod 64 (at most 61 columns are alive)
_LOW_BITS = np.array([(1 << k) - 1 for k in range(R.HEIGHT + 1)], dtype=np.uint64)  # bits 0..k-1 set
# Per channel, the colour of label 0 (black), 1 (the player, white), 2 (blocks and terrain, green).
_PALETTE = np.array([R.BLACK, R.WHITE, R.GREEN], dtype=np.uint8).T.copy()


class PixelCopterVectorEnv(VectorEnv):
    """``num_envs`` PixelCopter games stepped together; the rules of :class:`PixelCopterEnv`, vectorised.

    Observations are (num_envs, 48, 48, 3) uint8 (``obs_type="pixels"``, drawn in one batch) or (num_envs, 7)
    float32 game states. ``autoreset_mode`` is gymnasium's: ``NEXT_STEP`` (default; the step after an episode
    ends returns the new game's first observation with reward 0), ``SAME_STEP`` (the new game starts in the
    same step; ``info["final_obs"]`` holds the last observations) or ``DISABLED`` (reset finished games with
    ``reset(options={"reset_mask": mask})``). ``max_episode_steps`` truncates episodes, as ``TimeLimit`` does.
    ``uniform_buffer`` uniforms are drawn ahead per game so that draws for many games are one gather.

    Pixel observations are drawn incrementally into one buffer (only the pixels that changed are written).
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
        # Per schedule row: the first column on screen and, per pixel column, which of the on-screen columns'
        # masks it shows: slot k < V is column first + k alone, slot V + k columns k and k + 1 together.
        cover = self.schedule.cover  # (T, W, 2) columns over each pixel column, -1 = none
        second = cover[:, :, 1]
        if (cover[:, :, 0] < 0).any() or ((second >= 0) & (second != cover[:, :, 0] + 1)).any():
            raise RuntimeError("terrain schedule: a pixel column is bare or covered by non-adjacent columns")
        self._first_visible = cover[:, :, 0].min(axis=1)
        self._visible = int((cover.max(axis=(1, 2)) - self._first_visible).max()) + 1
        alone = cover[:, :, 0] - self._first_visible[:, None]
        self._cover_slot = np.where(second >= 0, self._visible + alone, alone)
        self._game_column = np.arange(n)[:, None]
        # where each mask word's pixel column starts in the screens (row 0, red); column W is scratch
        game, column = np.divmod(np.arange(n * (R.WIDTH + 1)), R.WIDTH + 1)
        self._cell_first_byte = 3 * (game * (R.HEIGHT * R.WIDTH) + column)

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
        # 1. the player
        self._vel += np.where(climb, R.CLIMB_ACCEL, R.FALL_ACCEL)
        self._vel *= R.MOMENTUM_DECAY
        self._y += self._vel
        # 2. scroll
        self._block_x -= R.SCROLL
        self._t += 1
        row, shift = self.schedule.lookup(self._t)
        player_top = R.rect_start(self._y, R.PLAYER_RECT_SIZE)[:, None]
        # 3. a life per block touching the player
        block_left = R.rect_start(self._block_x, R.BLOCK_WIDTH)
        hit = (
            self._block_on
            & R.intervals_overlap(block_left, R.BLOCK_WIDTH, R.PLAYER_LEFT, R.PLAYER_RECT_SIZE)
            & R.intervals_overlap(self._block_y - R.BLOCK_HEIGHT // 2, R.BLOCK_HEIGHT, player_top, R.PLAYER_RECT_SIZE)
        ).any(axis=1)
        # 4. ceiling and floor of the touching columns
        columns = self.schedule.touch[row]
        heights = self._column_heights(slice(None), columns, shift)
        touching = (columns >= 0) & R.intervals_overlap(
            heights - R.COLUMN_HEIGHT // 2, R.COLUMN_HEIGHT, player_top, R.PLAYER_RECT_SIZE
        )
        y = self._y[:, None]
        crash = (y - R.PLAYER_HEIGHT <= heights - R.GAP_HALF) | (y >= heights + R.GAP_HALF)
        hit |= (touching & crash).any(axis=1)
        # 5. the passed block leaves at x <= -4 (it is first in PLE's group, so this happens before the pass
        #    test); the block ahead pays when its centre reaches the player and no passed block remains
        self._block_on[:, 1] &= self._block_x[:, 1] > -R.BLOCK_WIDTH
        passed = live & (self._block_x[:, 0] <= R.PLAYER_X) & ~self._block_on[:, 1]
        if passed.any():
            envs = np.flatnonzero(passed)
            self._block_x[envs, 1], self._block_y[envs, 1] = self._block_x[envs, 0], self._block_y[envs, 0]
            self._block_on[envs, 1] = self._block_x[envs, 1] > -R.BLOCK_WIDTH
            u = self._take(envs, R.BLOCK_DRAWS)
            self._block_x[envs, 0], self._block_y[envs, 0] = R.block_from_uniforms(u[:, 0], u[:, 1])
        # 6. columns leaving the screen pay; 7. out of bounds
        reward = R.REWARD_PASS * (self.schedule.removed[row] + passed)
        hit |= (self._y < R.MIN_Y) | (self._y > R.MAX_Y)
        # 8. a new terrain batch
        refill = live & (self.schedule.refill_base[row] >= 0)
        if refill.any():
            envs = np.flatnonzero(refill)
            u = self._take(envs, R.TERRAIN_DRAWS)
            first = self.schedule.refill_base[row[envs]] + shift[envs]
            slots = (first[:, None] + np.arange(R.BATCH_SIZE)) & (_RING - 1)
            self._ring[envs[:, None], slots] = R.terrain_from_uniforms(u[:, 0], u[:, 1:], R.REFILL_BATCH_X0)
        reward += R.REWARD_LOSS * hit
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
    def _screen_masks(self) -> tuple[np.ndarray, np.ndarray]:
        """What every screen shows, as bits: ``(green, white)``, (num_envs, W + 1) uint64 each.

        Bit r of ``green[i, x]`` says pixel (row r, column x) of game i is green (terrain or a block); of
        ``white[i, x]``, that it shows the player. Column W is scratch and always 0. A pixel column covered by two
        terrain sprites is green where either paints; the player is white where nothing green covers it (PLE
        draws the player first, then blocks and terrain in one colour).
        """
        n, width, visible = self.num_envs, R.WIDTH, self._visible
        row, shift = self.schedule.lookup(self._t)
        slots = ((self._first_visible[row] + shift)[:, None] + np.arange(visible)) & (_RING - 1)
        heights = self._ring.reshape(-1)[self._ring_base[:, None] + slots].astype(np.intp)
        columns = np.empty((n, 2 * visible - 1), dtype=np.uint64)
        columns[:, :visible] = _TERRAIN_BITS[heights]
        np.bitwise_or(columns[:, : visible - 1], columns[:, 1:visible], out=columns[:, visible:])
        green = np.empty((n, width + 1), dtype=np.uint64)
        green[:, :width] = columns.reshape(-1)[self._cover_slot[row] + (2 * visible - 1) * self._game_column]
        # blocks: OR their rows into their (up to 4) on-screen columns; the others go to scratch column W
        block_columns = R.rect_start(self._block_x, R.BLOCK_WIDTH).astype(np.intp)[..., None] + np.arange(R.BLOCK_WIDTH)
        shown = self._block_on[..., None] & (block_columns.astype(np.uintp) < width)
        cells = (width + 1) * self._game_column[..., None] + np.where(shown, block_columns, width)
        green.reshape(-1)[cells] |= _BLOCK_BITS[self._block_y.astype(np.intp)][..., None]  # blocks never share columns
        green[:, width] = 0
        player_top = R.rect_start(self._y, R.PLAYER_RECT_SIZE).astype(np.intp)
        white = np.zeros_like(green)
        player_columns = slice(R.PLAYER_LEFT, R.PLAYER_LEFT + R.PLAYER_RECT_SIZE)
        white[:, player_columns] = _row_span(player_top, player_top + R.PLAYER_RECT_SIZE)[:, None]
        white[:, player_columns] &= ~green[:, player_columns]
        return green, white

    def _update_screens(self) -> np.ndarray:
        """Bring every game's screen up to date and return the (num_envs, 48, 48, 3) uint8 buffer.

        Only pixels whose colour changed since the last update are written: the world scrolls ~0.64 px a step and
        the sprites move a few pixels, so a step changes ~20 of a screen's 2304 pixels (~150 when a game resets).
        Changes are found on the bit masks (a word per pixel column), then byte by byte, then bit by bit.
        """
        if self._screens is None:  # drawn on first use: a state-observation env only draws for render()
            self._screens = np.zeros((self.num_envs, R.HEIGHT, R.WIDTH, 3), dtype=np.uint8)
            self._screen_bits = (np.zeros((self.num_envs, R.WIDTH + 1), dtype=np.uint64),) * 2
        green, white = self._screen_masks()
        old_green, old_white = self._screen_bits
        self._screen_bits = (green, white)
        changed = (green ^ old_green) | (white ^ old_white)
        words = np.flatnonzero(changed != 0)
        if len(words) == 0:
            return self._screens
        # Bit r of a word is bit r % 8 of its little-endian byte r // 8: the changed bytes are unpacked (8 pixels
        # each) with the new colours of their pixels, and the changed pixels picked.
        changed_bytes, hits = _set_bits(changed.reshape(-1)[words])
        green_bits = _unpack(green.reshape(-1)[words], changed_bytes)
        # 0 black, 1 white, 2 green
        label = (green_bits << 1 | _unpack(white.reshape(-1)[words], changed_bytes))[hits].astype(np.intp)
        byte_row = self._cell_first_byte[words[changed_bytes >> 3]] + (changed_bytes & 7) * (8 * 3 * R.WIDTH)
        first_byte = byte_row[hits >> 3] + (hits & 7) * (3 * R.WIDTH)
        flat = self._screens.reshape(-1)
        for channel in range(3):
            flat[channel:][first_byte] = _PALETTE[channel][label]
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


def _row_span(start: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """Bits start..stop-1 set, clipped to the screen's rows: a column mask per pair (any integer shape)."""
    return _LOW_BITS[np.clip(stop, 0, R.HEIGHT)] ^ _LOW_BITS[np.clip(start, 0, R.HEIGHT)]


def _set_bits(words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The nonzero bytes of ``words`` (indices into their little-endian bytes) and the set bits among those
    bytes' unpacked bits (8 per byte, least significant first)."""
    as_bytes = words.astype("<u8", copy=False).view(np.uint8)
    nonzero = np.flatnonzero(as_bytes != 0)
    return nonzero, np.flatnonzero(np.unpackbits(as_bytes[nonzero], bitorder="little").view(bool))


def _unpack(words: np.ndarray, byte_indices: np.ndarray) -> np.ndarray:
    """Bytes ``byte_indices`` of ``words`` (little-endian), unpacked to 0/1, least significant bit first."""
    return np.unpackbits(words.astype("<u8", copy=False).view(np.uint8)[byte_indices], bitorder="little")


# Column masks by integer height (terrain: the column's y_t; blocks: the block's centre y), for every height a
# game can hold (0 in ring slots not yet filled, unused blocks). A terrain sprite paints rows [y_t - 36, y_t - 12)
# and [y_t + 14, y_t + 36), a block rows [y - 4, y + 5), clipped to the screen.
_HEIGHTS = np.arange(2 * R.HEIGHT)
_SPRITE_TOP = _HEIGHTS - R.COLUMN_HEIGHT // 2
_TERRAIN_BITS = _row_span(_SPRITE_TOP + R.CEILING_SPRITE_ROWS[0], _SPRITE_TOP + R.CEILING_SPRITE_ROWS[1]) | _row_span(
    _SPRITE_TOP + R.FLOOR_SPRITE_ROWS[0], _SPRITE_TOP + R.FLOOR_SPRITE_ROWS[1]
)
_BLOCK_BITS = _row_span(_HEIGHTS - R.BLOCK_HEIGHT // 2, _HEIGHTS - R.BLOCK_HEIGHT // 2 + R.BLOCK_HEIGHT)
