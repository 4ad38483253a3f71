"""The vector env's per-step work compiled with numba: the game's moves and the screens, a pass over the games each.

:func:`advance` moves every game by one PLE step (player, blocks, collisions, scoring; the terrain batches, drawn
with numpy's ``sin``, stay in numpy so that they match the single env bit for bit). :func:`update_screens` brings
the screens up to date. Per game and pixel column, what a screen shows is two 48-bit masks: bit r of ``green``
says row r is green (terrain or a block), of ``white`` that it shows the player. The kernel computes each game's
masks from its state, compares them with the masks its screen shows and writes only the pixels whose bits differ:
the world scrolls ~0.64 px a step and sprites move a few pixels, so a step changes ~40 of a screen's 2304 pixels
under random play. numpy needed ~13 whole-array passes for the same (masks, changed words, bytes, bits, gathers).

Compiled on first use (a few seconds) and cached next to this file (``__pycache__``, git-ignored), so later
processes load them in well under a second. The rules' constants are compiled in and numba's cache watches only
this file: after changing :mod:`.rules`, delete the cache (the tests against the reference drawing and the single
env would fail on a stale one).
"""

from __future__ import annotations

import numba
import numpy as np

from dreamlab.envs.pixelcopter import rules as R

RING = 64  # terrain heights per game, indexed by global column index mod 64 (at most 61 columns are alive)


def _row_span(start: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """Bits start..stop-1 set, clipped to the screen's rows: a column mask per pair."""
    # bits 0..k-1 set; int64 (48 bits are used) keeps numba's integer arithmetic signed: uint64 mixed with int64
    # gives floats
    low_bits = np.array([(1 << k) - 1 for k in range(R.HEIGHT + 1)], dtype=np.int64)
    return low_bits[np.clip(stop, 0, R.HEIGHT)] ^ low_bits[np.clip(start, 0, R.HEIGHT)]


# Column masks by integer height (terrain: the column's y_t; blocks: the block's centre y), for every height a
# game can hold (0 in ring slots not yet filled, unused blocks). A terrain sprite paints rows [y_t - 36, y_t - 12)
# and [y_t + 14, y_t + 36), a block rows [y - 4, y + 5), clipped to the screen; the player rows [top, top + 2).
_HEIGHTS = np.arange(2 * R.HEIGHT)
_SPRITE_TOP = _HEIGHTS - R.COLUMN_HEIGHT // 2
TERRAIN_BITS = _row_span(_SPRITE_TOP + R.CEILING_SPRITE_ROWS[0], _SPRITE_TOP + R.CEILING_SPRITE_ROWS[1]) | _row_span(
    _SPRITE_TOP + R.FLOOR_SPRITE_ROWS[0], _SPRITE_TOP + R.FLOOR_SPRITE_ROWS[1]
)
BLOCK_BITS = _row_span(_HEIGHTS - R.BLOCK_HEIGHT // 2, _HEIGHTS - R.BLOCK_HEIGHT // 2 + R.BLOCK_HEIGHT)
_PLAYER_ROWS = np.arange(-R.PLAYER_RECT_SIZE, R.HEIGHT + 1)  # every top a drawn player can have, clipped
PLAYER_BITS = _row_span(_PLAYER_ROWS, _PLAYER_ROWS + R.PLAYER_RECT_SIZE)  # index: top + PLAYER_RECT_SIZE
# Per label (0 black, 1 white: the player, 2 green: blocks and terrain), its colour: 3 bytes from 3 * label.
PALETTE = np.array([R.BLACK, R.WHITE, R.GREEN], dtype=np.uint8).reshape(-1)


@numba.njit(cache=True, nogil=True, inline="always")
def _round_half_away(x: float) -> int:
    """pygame 2.x's rounding of a Rect coordinate (C ``lround``), as :func:`rules.round_half_away`."""
    nearest = np.rint(x)
    if abs(x - nearest) == 0.5:
        nearest = np.trunc(x) + np.sign(x)
    return int(nearest)


@numba.njit(cache=True, nogil=True, inline="always")
def _bits(table: np.ndarray, index: float) -> int:
    """``table[int(index)]``, the index clipped to the table: heights the game never reaches (a hand-made
    state) draw as the nearest height it has, instead of reading outside the table."""
    return table[min(max(int(index), 0), len(table) - 1)]


@numba.njit(cache=True, nogil=True, inline="always")
def _overlap(start_a: float, size_a: int, start_b: float, size_b: int) -> bool:
    """pygame's colliderect along one axis, as :func:`rules.intervals_overlap`."""
    return start_a < start_b + size_b and start_a + size_a > start_b


@numba.njit(cache=True, nogil=True)
def advance(
    climb: np.ndarray,  # (n,) bool: the action is up
    live: np.ndarray,  # (n,) bool: the game may draw randomness (a passed block is replaced)
    t: np.ndarray,  # (n,) int64, and the rest of the games' state, updated in place
    y: np.ndarray,
    vel: np.ndarray,
    block_x: np.ndarray,  # (n, 2): the block ahead, the block passed
    block_y: np.ndarray,
    block_on: np.ndarray,
    ring: np.ndarray,  # (n, RING) terrain heights
    uniforms: np.ndarray,  # (n, U): every live game has >= BLOCK_DRAWS unread from its cursor
    cursor: np.ndarray,
    touch: np.ndarray,  # the terrain schedule's tables (TerrainSchedule)
    removed: np.ndarray,
    cycle_start: int,
    period: int,
    index_shift: int,
    reward: np.ndarray,  # (n,) float64 out
    hit: np.ndarray,  # (n,) bool out: the game ended
) -> None:
    """One PLE step for every game, as :meth:`PixelCopterEnv.step` does it less the terrain batches."""
    for game in range(t.shape[0]):
        # 1. the player
        vel[game] += R.CLIMB_ACCEL if climb[game] else R.FALL_ACCEL
        vel[game] *= R.MOMENTUM_DECAY
        y[game] += vel[game]
        player_y = y[game]
        # 2. scroll
        block_x[game, 0] -= R.SCROLL
        block_x[game, 1] -= R.SCROLL
        t[game] += 1
        cycles = max(t[game] - cycle_start, 0) // period
        row, shift = t[game] - cycles * period, cycles * index_shift
        player_top = _round_half_away(player_y) - R.PLAYER_RECT_SIZE // 2
        # 3. a life per block touching the player
        crashed = False
        for block in range(2):
            crashed |= (
                block_on[game, block]
                and _overlap(
                    _round_half_away(block_x[game, block]) - R.BLOCK_WIDTH // 2,
                    R.BLOCK_WIDTH,
                    R.PLAYER_LEFT,
                    R.PLAYER_RECT_SIZE,
                )
                and _overlap(block_y[game, block] - R.BLOCK_HEIGHT // 2, R.BLOCK_HEIGHT, player_top, R.PLAYER_RECT_SIZE)
            )
        # 4. ceiling and floor of the touching columns
        for k in range(2):
            column = touch[row, k]
            if column >= 0:
                height = ring[game, (column + shift) & (RING - 1)]
                if _overlap(height - R.COLUMN_HEIGHT // 2, R.COLUMN_HEIGHT, player_top, R.PLAYER_RECT_SIZE):
                    crashed |= player_y - R.PLAYER_HEIGHT <= height - R.GAP_HALF or player_y >= height + R.GAP_HALF
        # 5. the passed block leaves at x <= -4 (it is first in PLE's group, so this happens before the pass
        #    test); the block ahead pays when its centre reaches the player and no passed block remains
        block_on[game, 1] &= block_x[game, 1] > -R.BLOCK_WIDTH
        passed = live[game] and block_x[game, 0] <= R.PLAYER_X and not block_on[game, 1]
        if passed:
            block_x[game, 1], block_y[game, 1] = block_x[game, 0], block_y[game, 0]
            block_on[game, 1] = block_x[game, 1] > -R.BLOCK_WIDTH
            u = cursor[game]
            cursor[game] = u + R.BLOCK_DRAWS
            block_x[game, 0] = R.BLOCK_X_RANGE[0] + np.floor(
                uniforms[game, u] * (R.BLOCK_X_RANGE[1] - R.BLOCK_X_RANGE[0])
            )
            block_y[game, 0] = R.BLOCK_Y_RANGE[0] + np.floor(
                uniforms[game, u + 1] * (R.BLOCK_Y_RANGE[1] - R.BLOCK_Y_RANGE[0])
            )
        # 6. columns leaving the screen pay; 7. out of bounds
        crashed |= player_y < R.MIN_Y or player_y > R.MAX_Y
        reward[game] = R.REWARD_PASS * (removed[row] + passed) + (R.REWARD_LOSS if crashed else 0.0)
        hit[game] = crashed


# ctz by de Bruijn multiplication: bit k alone, times this constant, has a distinct top 6 bits for every k
_DE_BRUIJN = 0x03F79D71B4CB0A89
DE_BRUIJN_BIT = np.zeros(64, dtype=np.int64)
DE_BRUIJN_BIT[[((_DE_BRUIJN << k) % (1 << 64)) >> 58 for k in range(64)]] = np.arange(64)


@numba.njit(cache=True, nogil=True)
def update_screens(
    screens: np.ndarray,  # (n, H * W * 3) uint8, drawn as green/white say; updated in place
    green: np.ndarray,  # (n, W) int64: the masks screens show; updated in place
    white: np.ndarray,
    rows: np.ndarray,  # (n,) terrain schedule rows of the games' step counts
    shifts: np.ndarray,  # (n,) column-index shifts of the same
    cover: np.ndarray,  # (T, W, 2) the schedule's columns over each pixel column, -1 = none
    ring: np.ndarray,  # (n, RING) terrain heights
    block_x: np.ndarray,  # (n, 2) block centres, and whether each block is on screen
    block_y: np.ndarray,
    block_on: np.ndarray,
    player_y: np.ndarray,  # (n,)
    terrain_bits: np.ndarray,
    block_bits: np.ndarray,
    player_bits: np.ndarray,
    palette: np.ndarray,
    de_bruijn_bit: np.ndarray,
) -> None:
    """Bring every game's screen (and masks) up to its state, writing only the pixels that change.

    A pixel column covered by two terrain sprites is green where either paints; the player is white where nothing
    green covers it (PLE draws the player first, then blocks and terrain in one colour).
    """
    width = green.shape[1]
    new_green = np.empty(width, dtype=np.int64)
    visible_bits = np.empty(RING, dtype=np.int64)
    for game in range(green.shape[0]):
        row, shift = rows[game], shifts[game]
        # columns on screen are consecutive in spawn order, which is left to right
        first, last = cover[row, 0, 0], max(cover[row, width - 1, 0], cover[row, width - 1, 1])
        for column in range(first, last + 1):
            visible_bits[column - first] = _bits(terrain_bits, ring[game, (column + shift) & (RING - 1)])
        for x in range(width):
            bits = visible_bits[cover[row, x, 0] - first]
            if cover[row, x, 1] >= 0:
                bits |= visible_bits[cover[row, x, 1] - first]
            new_green[x] = bits
        for block in range(2):
            if block_on[game, block]:
                left = _round_half_away(block_x[game, block]) - R.BLOCK_WIDTH // 2
                bits = _bits(block_bits, block_y[game, block])
                for x in range(max(left, 0), min(left + R.BLOCK_WIDTH, width)):
                    new_green[x] |= bits
        player = _bits(player_bits, _round_half_away(player_y[game]) - R.PLAYER_RECT_SIZE // 2 + R.PLAYER_RECT_SIZE)
        for x in range(width):
            new_white = player & ~new_green[x] if R.PLAYER_LEFT <= x < R.PLAYER_LEFT + R.PLAYER_RECT_SIZE else 0
            changed = (new_green[x] ^ green[game, x]) | (new_white ^ white[game, x])
            green[game, x], white[game, x] = new_green[x], new_white
            while changed != 0:
                low = changed & -changed
                changed ^= low
                r = de_bruijn_bit[((low * _DE_BRUIJN) >> 58) & 63]
                # 0 black, 1 white, 2 green (white pixels are never green): no branch to mispredict
                colour = 3 * (((new_green[x] >> r) & 1) * 2 + ((new_white >> r) & 1))
                pixel = 3 * (r * width + x)
                screens[game, pixel] = palette[colour]
                screens[game, pixel + 1] = palette[colour + 1]
                screens[game, pixel + 2] = palette[colour + 2]
