"""PLE's Pixelcopter rules at PLE's defaults (48 x 48 screen, 30 fps, ``force_fps=True``), with no pygame.

Everything here is what the single environment (:mod:`.env`) and the vectorised one (:mod:`.vector`) share:
constants, pygame 2.x rect semantics, how uniform draws become blocks and terrain, and the terrain schedule.
Sources: ``ple/games/pixelcopter.py`` and ``ple/ple.py`` of ntasfi/PyGame-Learning-Environment; pygame 2.x
``Rect`` (float coordinates rounded half away from zero, ``colliderect`` on open intervals).

Every constant is computed by the same float expression PLE evaluates, so positions agree with PLE bit for bit
(e.g. the scroll per step is ``0.0192 * 33.333...``, not the decimal 0.64).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

WIDTH = 48
HEIGHT = 48
FPS = 30
STEP_MS = 1000.0 / FPS  # PLE(force_fps=True) advances the game by 1000/fps ms per act()
SPEED = 0.0004 * WIDTH  # px per ms, for both scrolling and the player's thrust
SCROLL = SPEED * STEP_MS  # every block and column moves left by this much per step (~0.64 px)

# Player (PLE's HelicopterPlayer): momentum += accel; momentum *= 0.99; y += momentum.
CLIMB_ACCEL = (SPEED * -0.875) * STEP_MS
FALL_ACCEL = (SPEED * 0.09) * STEP_MS
MOMENTUM_DECAY = 0.99
PLAYER_X = int(WIDTH * 0.35)  # 16; the player's centre never moves horizontally
PLAYER_START_Y = HEIGHT / 2
PLAYER_HEIGHT = HEIGHT * 0.05  # 2.4..., the float PLE subtracts in its ceiling test
PLAYER_RECT_SIZE = int(WIDTH * 0.05)  # its 2 x 2 sprite: pygame turns the float surface size into 2

# Terrain columns: a batch of 48 at spawn x0 = start + 2, start + 6, ... (PLE's _add_terrain).
COLUMN_WIDTH = int(WIDTH * 0.1)  # 4
COLUMN_HEIGHT = int(HEIGHT * 1.5)  # 72: the sprite spans ceiling, gap and floor
FIRST_BATCH_X0 = np.arange(0 + COLUMN_WIDTH // 2, WIDTH * 4 + COLUMN_WIDTH // 2, COLUMN_WIDTH)  # 2 .. 190
REFILL_BATCH_X0 = np.arange(WIDTH + COLUMN_WIDTH // 2, WIDTH * 5 + COLUMN_WIDTH // 2, COLUMN_WIDTH)  # 50 .. 238
BATCH_SIZE = len(FIRST_BATCH_X0)  # 48
REFILL_AT_COUNT = 10 + 3  # a new batch is added when this many columns or fewer remain after a step
BASE_FREQUENCY = 4.5 / WIDTH
FREQUENCY_JITTER = (-0.01, 0.01)  # frequency = base + U(-0.01, 0.01), drawn once per batch
PHASE_RANGE = (0.0, 0.5)  # phase ~ U(0, 0.5), drawn per column
TERRAIN_CENTRE = HEIGHT / 2.0
TERRAIN_AMPLITUDE = HEIGHT * 0.125
GAP_HALF = HEIGHT * 0.25  # ceiling at y_t - 12, floor at y_t + 12: the collision thresholds
# Pixel rows of the column sprite (0 = its top) drawn green: pygame.draw.rect((0, 0, w, 0.5 H)) and
# ((0, 1.05 H, w, 0.5 H)) on a 1.5 H tall surface, the second clipped by the surface.
CEILING_SPRITE_ROWS = (0, int(HEIGHT * 0.5))  # (0, 24)
FLOOR_SPRITE_ROWS = (int(HEIGHT * 1.05), min(int(HEIGHT * 1.05) + int(HEIGHT * 0.5), COLUMN_HEIGHT))  # (50, 72)

# Blocks (PLE's _add_blocks): centre x = randint(W, 1.5 W), centre y = randint(0.25 H, 0.75 H), exclusive highs.
BLOCK_WIDTH = int(WIDTH * 0.1)  # 4
BLOCK_HEIGHT = int(HEIGHT * 0.2)  # 9
BLOCK_X_RANGE = (WIDTH, int(WIDTH * 1.5))  # 48 .. 71
BLOCK_Y_RANGE = (int(HEIGHT * 0.25), int(HEIGHT * 0.75))  # 12 .. 35

# Out of bounds (PLE: "its above" / "its below the lowest possible block").
MIN_Y = HEIGHT * 0.125
MAX_Y = HEIGHT * 0.875

# PLE's default reward values; "tick" is 0.
REWARD_PASS = 1.0
REWARD_LOSS = -5.0

BLACK = (0, 0, 0)
WHITE = (255, 255, 255)
GREEN = (120, 240, 80)

# Uniform draws per random event, consumed in this order from one generator per game.
BLOCK_DRAWS = 2  # centre x, centre y
TERRAIN_DRAWS = 1 + BATCH_SIZE  # the batch frequency, then one phase per column

ACTION_UP = 0  # gym-ple's action order: PLE's action set is [K_w, noop]
ACTION_NOOP = 1


def round_half_away(x: np.ndarray | float) -> np.ndarray:
    """A float coordinate as pygame 2.x stores it in a Rect: rounded half away from zero (C ``lround``)."""
    x = np.asarray(x, dtype=np.float64)
    nearest = np.rint(x)  # exact, but ties go to even
    tie = np.abs(x - nearest) == 0.5
    if tie.any():
        nearest = np.where(tie, np.trunc(x) + np.sign(x), nearest)
    return nearest


def round_half_away_scalar(x: float) -> int:
    """:func:`round_half_away` for one Python float, without numpy's per-call overhead."""
    nearest = round(x)  # exact, ties to even
    return math.trunc(x) + int(math.copysign(1, x)) if abs(x - nearest) == 0.5 else nearest


def rect_start(centre: np.ndarray | float, size: int) -> np.ndarray:
    """Left (or top) of a pygame Rect of ``size`` whose centre is set to ``centre``: round(centre) - size // 2."""
    return round_half_away(centre) - size // 2


def intervals_overlap(start_a, size_a, start_b, size_b):
    """pygame's colliderect along one axis: the open intervals (start, start + size) intersect."""
    return (start_a < start_b + size_b) & (start_a + size_a > start_b)


def block_from_uniforms(u_x: np.ndarray | float, u_y: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """Block centre (x, y) from two U[0, 1) draws: randint over BLOCK_X_RANGE and BLOCK_Y_RANGE."""
    x = BLOCK_X_RANGE[0] + np.floor(np.asarray(u_x) * (BLOCK_X_RANGE[1] - BLOCK_X_RANGE[0]))
    y = BLOCK_Y_RANGE[0] + np.floor(np.asarray(u_y) * (BLOCK_Y_RANGE[1] - BLOCK_Y_RANGE[0]))
    return x, y


def terrain_from_uniforms(u_frequency: np.ndarray | float, u_phases: np.ndarray, x0: np.ndarray) -> np.ndarray:
    """Column centres y_t = int(H/2 + H/8 sin(f x0 + phase)) for one batch per row of ``u_phases``.

    ``u_frequency`` has shape (...,), ``u_phases`` (..., BATCH_SIZE); uniforms map to ranges as numpy's
    ``RandomState.uniform`` does (low + (high - low) u). Returns float64 integers, shape (..., BATCH_SIZE).
    """
    low, high = FREQUENCY_JITTER
    frequency = BASE_FREQUENCY + (low + (high - low) * np.asarray(u_frequency, dtype=np.float64))
    phase = PHASE_RANGE[0] + (PHASE_RANGE[1] - PHASE_RANGE[0]) * np.asarray(u_phases, dtype=np.float64)
    jitter = TERRAIN_AMPLITUDE * np.sin(frequency[..., None] * x0 + phase)
    return np.trunc(TERRAIN_CENTRE + jitter)


PLAYER_LEFT = PLAYER_X - PLAYER_RECT_SIZE // 2  # 15: the player's rect spans x in [15, 17)


@dataclass(frozen=True)
class TerrainSchedule:
    """Where every terrain column is, as a function of the step count alone.

    Column positions never depend on randomness: every batch starts at fixed x0 and all columns scroll together,
    so which columns touch the player, which leave the screen and when a batch is added follow from the number of
    steps since reset ``t``. Columns get global indices in spawn order (the first batch 0..47, then 48..95, ...).
    The pattern repeats: from the first refill on, every ``period`` steps the same happens to columns
    ``index_shift`` further on. Rows are end-of-step states (row 0: right after reset).

    touch:       (T, 2) indices of the columns whose rect overlaps the player's x-range, spawn order, -1 = none.
    removed:     (T,) columns removed (x <= -4) during the step.
    refill_base: (T,) global index of the first column of a batch added during the step, -1 = no batch.
    cover:       (T, W, 2) indices of the columns drawn over each pixel column, spawn order, -1 = none.
    """

    touch: np.ndarray
    removed: np.ndarray
    refill_base: np.ndarray
    cover: np.ndarray
    cycle_start: int
    period: int
    index_shift: int
    max_alive: int

    def lookup(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Table row and column-index shift for step counts ``t`` (any non-negative integers)."""
        cycles = np.maximum(t - self.cycle_start, 0) // self.period
        return t - cycles * self.period, cycles * self.index_shift


def _column_rows(x: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(touch (2,), cover (W, 2)) for columns at centres ``x`` with global indices ``index`` in spawn order."""
    left = rect_start(x, COLUMN_WIDTH)
    touch = np.full(2, -1, dtype=np.int64)
    touching = index[intervals_overlap(left, COLUMN_WIDTH, PLAYER_LEFT, PLAYER_RECT_SIZE)]
    if len(touching) == 0 or len(touching) > 2:
        raise RuntimeError(f"terrain schedule: {len(touching)} columns touch the player's x-range, expected 1 or 2")
    touch[: len(touching)] = touching
    pixels = np.arange(WIDTH)[:, None]
    covering = (pixels >= left[None, :]) & (pixels < left[None, :] + COLUMN_WIDTH)
    if covering.sum(axis=1).max() > 2:
        raise RuntimeError("terrain schedule: more than two columns overlap one pixel column")
    first = np.argmax(covering, axis=1)
    second_candidates = covering.copy()
    second_candidates[np.arange(WIDTH), first] = False
    second = np.argmax(second_candidates, axis=1)
    cover = np.stack(
        [
            np.where(covering.any(axis=1), index[first], -1),
            np.where(second_candidates.any(axis=1), index[second], -1),
        ],
        axis=1,
    )
    return touch, cover


@functools.cache
def terrain_schedule() -> TerrainSchedule:
    """The schedule at PLE's defaults, built once per process (a fraction of a second)."""
    return build_terrain_schedule()


def build_terrain_schedule(check_periods: int = 2) -> TerrainSchedule:
    """Simulate PLE's column bookkeeping (no randomness needed) and tabulate it up to its second refill.

    The table is verified to repeat over ``check_periods`` further periods, decision by decision (rounded lefts,
    removals, refills), so extending it periodically gives exactly what step-by-step simulation gives.
    """
    x = FIRST_BATCH_X0.astype(np.float64)
    index = np.arange(BATCH_SIZE, dtype=np.int64)
    spawned = BATCH_SIZE
    touch, cover = _column_rows(x, index)
    rows = {"touch": [touch], "removed": [0], "refill_base": [-1], "cover": [cover]}
    refill_steps: list[int] = []
    max_alive = len(x)
    t = 0
    while len(refill_steps) < 2 + check_periods:
        t += 1
        x = x - SCROLL
        touch, _ = _column_rows(x, index)  # collisions use the moved columns, before removal and refill
        keep = x > -COLUMN_WIDTH
        removed = int((~keep).sum())
        x, index = x[keep], index[keep]
        refill_base = -1
        if len(x) <= REFILL_AT_COUNT:
            refill_base = spawned
            x = np.concatenate([x, REFILL_BATCH_X0.astype(np.float64)])
            index = np.concatenate([index, np.arange(spawned, spawned + BATCH_SIZE)])
            spawned += BATCH_SIZE
            refill_steps.append(t)
        max_alive = max(max_alive, len(x))
        end_touch, cover = _column_rows(x, index)
        if not np.array_equal(end_touch, touch):
            raise RuntimeError(f"terrain schedule: removal or refill changed the touching columns at step {t}")
        rows["touch"].append(touch)
        rows["removed"].append(removed)
        rows["refill_base"].append(refill_base)
        rows["cover"].append(cover)
    table = {k: np.asarray(v, dtype=np.int64) for k, v in rows.items()}
    cycle_start, period = refill_steps[0], refill_steps[1] - refill_steps[0]
    for later in range(1, check_periods + 1):
        base = slice(cycle_start, cycle_start + period)
        again = slice(cycle_start + later * period, cycle_start + (later + 1) * period)
        for key in ("touch", "refill_base", "cover"):
            expected = np.where(table[key][base] >= 0, table[key][base] + later * BATCH_SIZE, -1)
            if not np.array_equal(table[key][again], expected):
                raise RuntimeError(f"terrain schedule: {key} does not repeat every {period} steps")
        if not np.array_equal(table["removed"][again], table["removed"][base]):
            raise RuntimeError(f"terrain schedule: removals do not repeat every {period} steps")
    end = cycle_start + period
    return TerrainSchedule(
        touch=table["touch"][:end],
        removed=table["removed"][:end],
        refill_base=table["refill_base"][:end],
        cover=table["cover"][:end],
        cycle_start=cycle_start,
        period=period,
        index_shift=BATCH_SIZE,
        max_alive=max_alive,
    )
