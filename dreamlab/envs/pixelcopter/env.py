"""PixelCopter as a gymnasium environment: PLE's Pixelcopter game, step for step, without pygame.

This is the reference implementation: every sprite is kept explicitly (the player, a list of blocks, an array of
terrain columns in spawn order) and moved, collided, scored and drawn in the order PLE's ``Pixelcopter.step``
does. :class:`~dreamlab.envs.pixelcopter.vector.PixelCopterVectorEnv` computes the same game for many copies at
once and is tested against this class.
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from dreamlab.envs.checks import check_seed, is_integer
from dreamlab.envs.pixelcopter import rules as R

STATE_KEYS = (
    "player_y",
    "player_vel",
    "player_dist_to_ceil",
    "player_dist_to_floor",
    "next_gate_dist_to_player",
    "next_gate_block_top",
    "next_gate_block_bottom",
)
OBS_TYPES = ("pixels", "state")


def observation_space(obs_type: str) -> gym.spaces.Box:
    """One game's observation space: (H, W, 3) uint8 pixels, or the 7 game-state values as float32."""
    if obs_type == "pixels":
        return gym.spaces.Box(0, 255, (R.HEIGHT, R.WIDTH, 3), np.uint8)
    if obs_type == "state":
        return gym.spaces.Box(-np.inf, np.inf, (len(STATE_KEYS),), np.float32)
    raise ValueError(f"unknown obs_type {obs_type!r}; choose from {OBS_TYPES}")


def check_render_mode(render_mode: str | None) -> None:
    if render_mode not in (None, "rgb_array"):
        raise ValueError(f"unsupported render_mode {render_mode!r}; PixelCopter renders only 'rgb_array'")


class PixelCopterEnv(gym.Env):
    """PLE's Pixelcopter (48 x 48, 30 fps) with gym-ple's interface: action 0 = up (thrust), 1 = no-op.

    Rewards are PLE's: +1 per block passed and per terrain column leaving the screen, -5 on death; the episode
    terminates on death and has no time limit (``gym.make(..., max_episode_steps=N)`` adds one).
    ``obs_type="pixels"`` gives the (48, 48, 3) uint8 screen, rows = y; ``"state"`` gives
    :meth:`game_state`'s seven values as float32. Randomness comes from ``self.np_random`` (seed it with
    ``reset(seed=...)``): uniform doubles, two per block and 49 per terrain batch, in game order.
    Arguments are checked as gymnasium checks them (:mod:`dreamlab.envs.checks`): a seed is ``None`` or a
    non-negative integer (else :class:`~dreamlab.envs.checks.SeedError`), an action the integer 0 or 1 (else
    ``ValueError``; floats and bools are refused whatever their value).

    The game is public, in PLE's terms: ``player_y``, ``player_vel`` (PLE's momentum), ``blocks`` (``[centre x,
    centre y]`` in PLE's group order), ``terrain_x`` and ``terrain_y`` (column centres in spawn order), ``lives``
    and ``steps`` (since reset).

    Differences from PLE that are not rules: PLE draws from ``RandomState`` with different calls, so a seed gives
    another (identically distributed) game than PLE's; PLE's first observation after a reset is the stale
    screen of the previous episode, here it is the new game's first frame; ``getScreenRGB`` returns (W, H, 3),
    here observations are (H, W, 3) as gym-ple returns them.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": R.FPS}

    def __init__(self, obs_type: str = "pixels", render_mode: str | None = None) -> None:
        self.observation_space = observation_space(obs_type)
        check_render_mode(render_mode)
        self.obs_type = obs_type
        self.render_mode = render_mode
        self.action_space = gym.spaces.Discrete(2)
        self.lives = 0.0  # no game until reset()

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=check_seed(seed))
        self.player_y = R.PLAYER_START_Y
        self.player_vel = 0.0
        self.lives = 1.0
        self.steps = 0
        # PLE's init(): a block first, then the first terrain batch.
        self.blocks: list[list[float]] = [self._new_block()]
        self.terrain_x = R.FIRST_BATCH_X0.astype(np.float64)
        self.terrain_y = self._new_terrain_heights(R.FIRST_BATCH_X0)
        return self._observation(), {}

    def _new_block(self) -> list[float]:
        u = self.np_random.random(R.BLOCK_DRAWS)
        x, y = R.block_from_uniforms(u[0], u[1])
        return [float(x), float(y)]

    def _new_terrain_heights(self, x0: np.ndarray) -> np.ndarray:
        u = self.np_random.random(R.TERRAIN_DRAWS)
        return R.terrain_from_uniforms(u[0], u[1:], x0)

    def _player_top(self) -> int:
        return R.round_half_away_scalar(self.player_y) - R.PLAYER_RECT_SIZE // 2

    def _collides(self, centre_x: float, centre_y: float, width: int, height: int, player_top: int) -> bool:
        """pygame's colliderect between the player's rect and a width x height rect centred at (x, y)."""
        left = R.round_half_away_scalar(centre_x) - width // 2
        top = R.round_half_away_scalar(centre_y) - height // 2
        size = R.PLAYER_RECT_SIZE
        return R.intervals_overlap(left, width, R.PLAYER_LEFT, size) and R.intervals_overlap(
            top, height, player_top, size
        )

    def _touching_columns(self) -> list[int]:
        """Indices (spawn order) of the columns whose rect collides with the player's rect."""
        player_top = self._player_top()
        # rects 4 and 2 wide overlap only if the rounded centres are < 3 apart, so |x - 16| < 4 finds them all
        near = np.flatnonzero(np.abs(self.terrain_x - R.PLAYER_X) < (R.COLUMN_WIDTH + R.PLAYER_RECT_SIZE) / 2 + 1)
        xs, ys = self.terrain_x[near].tolist(), self.terrain_y[near].tolist()
        return [
            int(i)
            for i, x, y in zip(near, xs, ys, strict=True)
            if self._collides(x, y, R.COLUMN_WIDTH, R.COLUMN_HEIGHT, player_top)
        ]

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self.lives <= 0:
            raise RuntimeError("PixelCopter episode is over (or never started); call reset() first")
        # action_space.contains, less its acceptance of bools: True is a mistake, not action 1
        if not (is_integer(action) and self.action_space.contains(action)):
            raise ValueError(f"action must be the integer 0 (up) or 1 (no-op), got {action!r}")
        action = int(action)
        score = 0.0
        # 1. the player (PLE's HelicopterPlayer.update)
        accel = R.CLIMB_ACCEL if action == R.ACTION_UP else R.FALL_ACCEL
        self.player_vel += accel
        self.player_vel *= R.MOMENTUM_DECAY
        self.player_y += self.player_vel
        # 2. blocks and terrain scroll
        for block in self.blocks:
            block[0] -= R.SCROLL
        self.terrain_x = self.terrain_x - R.SCROLL
        self.steps += 1
        # 3. a life per block touching the player
        player_top = self._player_top()
        self.lives -= sum(self._collides(x, y, R.BLOCK_WIDTH, R.BLOCK_HEIGHT, player_top) for x, y in self.blocks)
        # 4. per touching column, a life for the ceiling and one for the floor
        for column in self._touching_columns():
            column_y = self.terrain_y[column]
            if self.player_y - R.PLAYER_HEIGHT <= column_y - R.GAP_HALF:
                self.lives -= 1
            if self.player_y >= column_y + R.GAP_HALF:
                self.lives -= 1
        # 5. blocks passed and gone; PLE loops over a snapshot of the group in insertion order, so a block added
        #    here is not visited, and the pass test sees the group's current size
        for block in list(self.blocks):
            if block[0] <= R.PLAYER_X and len(self.blocks) == 1:
                score += R.REWARD_PASS
                self.blocks.append(self._new_block())
            if block[0] <= -R.BLOCK_WIDTH:
                self.blocks = [b for b in self.blocks if b is not block]
        # 6. columns gone
        gone = self.terrain_x <= -R.COLUMN_WIDTH
        if gone.any():
            score += R.REWARD_PASS * int(gone.sum())
            self.terrain_x, self.terrain_y = self.terrain_x[~gone], self.terrain_y[~gone]
        # 7. out of bounds
        if self.player_y < R.MIN_Y:
            self.lives -= 1
        if self.player_y > R.MAX_Y:
            self.lives -= 1
        # 8. refill terrain
        if len(self.terrain_x) <= R.REFILL_AT_COUNT:
            self.terrain_x = np.concatenate([self.terrain_x, R.REFILL_BATCH_X0.astype(np.float64)])
            self.terrain_y = np.concatenate([self.terrain_y, self._new_terrain_heights(R.REFILL_BATCH_X0)])
        terminated = self.lives <= 0
        if terminated:
            score += R.REWARD_LOSS
        return self._observation(), score, terminated, False, {}

    def game_state(self) -> dict[str, float | int]:
        """PLE's ``getGameState()``: its keys, meanings and quirks.

        Distances to ceiling and floor refer to the first column (in spawn order) touching the player; the next
        gate is the nearest block ahead of the player (centre x - player x > 0, below PLE's 999 sentinel);
        ``next_gate_block_top`` is that block's centre y and ``next_gate_block_bottom`` its centre y plus the
        block height (PLE's naming, kept).
        """
        if not hasattr(self, "terrain_x"):
            raise RuntimeError("no game yet; call reset() first")
        column_y = float(self.terrain_y[self._touching_columns()[0]])
        ahead = [(b[0] - R.PLAYER_X, b) for b in self.blocks if 0 < b[0] - R.PLAYER_X < 999]
        distance, block = min(ahead, key=lambda item: item[0])
        return {
            "player_y": float(self.player_y),
            "player_vel": float(self.player_vel),
            "player_dist_to_ceil": float(self.player_y - (column_y - R.GAP_HALF)),
            "player_dist_to_floor": float((column_y + R.GAP_HALF) - self.player_y),
            "next_gate_dist_to_player": float(distance),
            "next_gate_block_top": int(block[1]),
            "next_gate_block_bottom": int(block[1]) + R.BLOCK_HEIGHT,
        }

    def _observation(self) -> np.ndarray:
        if self.obs_type == "state":
            return np.array(list(self.game_state().values()), dtype=np.float32)
        return self._draw()

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        return self._draw()

    def _draw(self) -> np.ndarray:
        """The screen after a step, drawn as PLE does: black, then the player, blocks and terrain on top.

        Sprites are blitted at their rects, clipped to the screen; their black pixels are transparent
        (PLE sets a black colour key), which leaves the gap of a column sprite see-through.
        """
        frame = np.zeros((R.HEIGHT, R.WIDTH, 3), dtype=np.uint8)
        _blit(frame, R.PLAYER_LEFT, self._player_top(), R.PLAYER_RECT_SIZE, (0, R.PLAYER_RECT_SIZE), R.WHITE)
        for x, y in self.blocks:
            left = R.round_half_away_scalar(x) - R.BLOCK_WIDTH // 2
            _blit(frame, left, int(y) - R.BLOCK_HEIGHT // 2, R.BLOCK_WIDTH, (0, R.BLOCK_HEIGHT), R.GREEN)
        lefts = R.rect_start(self.terrain_x, R.COLUMN_WIDTH).astype(int)
        tops = self.terrain_y.astype(int) - R.COLUMN_HEIGHT // 2
        on_screen = (lefts > -R.COLUMN_WIDTH) & (lefts < R.WIDTH)
        for left, top in zip(lefts[on_screen], tops[on_screen], strict=True):
            for rows in (R.CEILING_SPRITE_ROWS, R.FLOOR_SPRITE_ROWS):
                _blit(frame, int(left), int(top), R.COLUMN_WIDTH, rows, R.GREEN)
        return frame


def _blit(frame: np.ndarray, left: int, top: int, width: int, rows: tuple[int, int], colour) -> None:
    """Paint sprite rows [rows[0], rows[1]) of a ``width``-wide sprite whose top-left is (left, top), clipped."""
    y0, y1 = max(top + rows[0], 0), min(top + rows[1], frame.shape[0])
    x0, x1 = max(left, 0), min(left + width, frame.shape[1])
    if y0 < y1 and x0 < x1:
        frame[y0:y1, x0:x1] = colour
