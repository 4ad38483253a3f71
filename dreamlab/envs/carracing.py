"""CarRacing-v3 as World Models sees it: the 96x96 view without its dashboard, resized to 64x64 RGB.

Actions are continuous (steer in [-1, 1], gas in [0, 1], brake in [0, 1]); reward is -0.1 per frame plus
1000/N per new track tile, so "solved" is an average of 900 over 100 episodes (Ha & Schmidhuber reach 906 +- 21).
The environment needs Box2D (``pip install 'dreamlab[box2d]'``); it is imported only when an env is made.
"""

from __future__ import annotations

import functools

import cv2
import gymnasium as gym
import numpy as np

MAX_EPISODE_STEPS = 1000
SOLVED_RETURN = 900.0
# The bottom 12 rows of the 96x96 frame are the dashboard (speed, ABS, steering bars); World Models crops them.
_VIEW_ROWS = 84


def preprocess_frame(frame: np.ndarray, size: int = 64) -> np.ndarray:
    """(96, 96, 3) uint8 -> (size, size, 3) uint8: dashboard cropped, area-averaged."""
    if frame.ndim != 3 or frame.shape[-1] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB frame, got shape {frame.shape}")
    return cv2.resize(frame[:_VIEW_ROWS], (size, size), interpolation=cv2.INTER_AREA)


class CarRacingFrames(gym.ObservationWrapper):
    """CarRacing observations cropped and resized to (size, size, 3) uint8."""

    def __init__(self, env: gym.Env, size: int = 64):
        super().__init__(env)
        self.size = size
        self.observation_space = gym.spaces.Box(0, 255, (size, size, 3), np.uint8)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return preprocess_frame(observation, self.size)


@functools.cache
def _road_renderer_class() -> type:
    """gymnasium's CarRacing with the road drawn from NumPy arrays (Box2D is imported only when an env is made)."""
    import pygame
    from gymnasium.envs.box2d import car_racing
    from pygame import gfxdraw

    class CarRacingFastRoad(car_racing.CarRacing):
        """CarRacing-v3 whose ``_render_road`` transforms and culls all polygons in one array computation.

        gymnasium rotates, scales and bounds-checks each of the ~730 grass and road polygons in Python every frame,
        most of the env's step time, to draw the ~27 on screen. Here the same transform (pygame's ``rotate_rad``,
        then zoom and translation) and the same visibility test run on arrays, and the visible polygons are drawn
        by the same gfxdraw calls in the same order, from the tiles' live colours (a visited tile changes colour).
        """

        # (the track's polygon list itself, its length, grass + road vertices): holding the list, not its id, means
        # a new track's list can never be mistaken for the old one.
        _vertex_cache: tuple[list, int, np.ndarray] | None = None

        def _road_vertices(self) -> np.ndarray:
            cache = self._vertex_cache
            if cache is None or cache[0] is not self.road_poly or cache[1] != len(self.road_poly):
                road = np.asarray([poly for poly, _ in self.road_poly], dtype=np.float64).reshape(-1, 4, 2)
                self._vertex_cache = cache = (
                    self.road_poly,
                    len(self.road_poly),
                    np.concatenate([_grass_vertices(), road]),
                )
            return cache[2]

        # Set by make_car_racing: skip what World Models never sees (see _render).
        lean_render = False

        def _render(self, mode: str):
            """gymnasium's ``_render``; with ``lean_render``, the observation without the dashboard's reward text.

            The text (pygame builds a font and renders the score every frame, ~15% of a step) lies in rows
            727-773 of the 800-row window, inside the dashboard (rows 700-799) that the 96x96 frame's bottom 12
            rows show and World Models crops; rows 0-83, all World Models sees, are unchanged (a test compares
            them with gymnasium's). The speed and ABS bars are still drawn: at high wheel speeds they reach
            above the dashboard.
            """
            if not self.lean_render or mode != "state_pixels" or "t" not in self.__dict__:
                return super()._render(mode)
            self.surf = pygame.Surface((car_racing.WINDOW_W, car_racing.WINDOW_H))
            angle = -self.car.hull.angle
            # The same transform as gymnasium's, including the zoom animation of the first second.
            zoom = 0.1 * car_racing.SCALE * max(1 - self.t, 0) + car_racing.ZOOM * car_racing.SCALE * min(self.t, 1)
            scroll_x = -(self.car.hull.position[0]) * zoom
            scroll_y = -(self.car.hull.position[1]) * zoom
            trans = pygame.math.Vector2((scroll_x, scroll_y)).rotate_rad(angle)
            trans = (car_racing.WINDOW_W / 2 + trans[0], car_racing.WINDOW_H / 4 + trans[1])
            self._render_road(zoom, trans, angle)
            self.car.draw(self.surf, zoom, trans, angle, False)
            self.surf = pygame.transform.flip(self.surf, False, True)
            self._render_indicators(car_racing.WINDOW_W, car_racing.WINDOW_H)
            return self._create_image_array(self.surf, (car_racing.STATE_W, car_racing.STATE_H))

        def _render_road(self, zoom, translation, angle):
            bounds = car_racing.PLAYFIELD
            field = [(bounds, bounds), (bounds, -bounds), (-bounds, -bounds), (-bounds, bounds)]
            if self.lean_render and _covers_window(bounds, zoom, translation, angle):
                # The field polygon fills every pixel and its anti-aliased edges lie off screen: a plain fill
                # draws the same pixels without rasterising an 800,000-pixel polygon.
                self.surf.fill(self.bg_color)
            else:
                self._draw_colored_polygon(self.surf, field, self.bg_color, zoom, translation, angle, clip=False)
            vertices = self._road_vertices()
            cos, sin = np.cos(angle), np.sin(angle)
            x = (vertices[..., 0] * cos - vertices[..., 1] * sin) * zoom + translation[0]
            y = (vertices[..., 0] * sin + vertices[..., 1] * cos) * zoom + translation[1]
            margin = car_racing.MAX_SHAPE_DIM
            inside = (x >= -margin) & (x <= car_racing.WINDOW_W + margin)
            inside &= (y >= -margin) & (y <= car_racing.WINDOW_H + margin)
            n_grass = len(_grass_vertices())
            for index in np.flatnonzero(inside.any(axis=1)):
                tile = index - n_grass
                color = self.grass_color if tile < 0 else [int(c) for c in self.road_poly[tile][1]]
                points = list(zip(x[index].tolist(), y[index].tolist(), strict=True))
                gfxdraw.aapolygon(self.surf, points, color)
                gfxdraw.filled_polygon(self.surf, points, color)

    return CarRacingFastRoad


def _covers_window(bounds: float, zoom: float, translation: tuple[float, float], angle: float) -> bool:
    """Whether the square field |x|, |y| <= bounds, drawn with gymnasium's transform, covers the whole window and
    a few pixels beyond it (so its anti-aliased outline is off screen)."""
    from gymnasium.envs.box2d.car_racing import WINDOW_H, WINDOW_W

    margin = 4.0
    corners = np.array([[-margin, -margin], [WINDOW_W + margin, -margin], [-margin, WINDOW_H + margin]])
    corners = np.vstack([corners, [WINDOW_W + margin, WINDOW_H + margin]]) - np.asarray(translation)
    # Screen = rotate(world, angle) * zoom + translation, so world = rotate(screen - translation, -angle) / zoom.
    cos, sin = np.cos(angle), np.sin(angle)
    x = (corners[:, 0] * cos + corners[:, 1] * sin) / zoom
    y = (-corners[:, 0] * sin + corners[:, 1] * cos) / zoom
    return bool(np.all(np.abs(x) < bounds) and np.all(np.abs(y) < bounds))


@functools.cache
def _grass_vertices() -> np.ndarray:
    """gymnasium CarRacing's 400 grass squares (400, 4, 2), in its drawing order."""
    from gymnasium.envs.box2d.car_racing import GRASS_DIM

    squares = [
        [
            (GRASS_DIM * x + GRASS_DIM, GRASS_DIM * y),
            (GRASS_DIM * x, GRASS_DIM * y),
            (GRASS_DIM * x, GRASS_DIM * y + GRASS_DIM),
            (GRASS_DIM * x + GRASS_DIM, GRASS_DIM * y + GRASS_DIM),
        ]
        for x in range(-20, 20, 2)
        for y in range(-20, 20, 2)
    ]
    return np.asarray(squares, dtype=np.float64)


def make_car_racing(
    max_episode_steps: int = MAX_EPISODE_STEPS, frame_size: int = 64, lean_render: bool = False
) -> gym.Env:
    """CarRacing-v3 with (frame_size, frame_size, 3) uint8 observations, truncated at ``max_episode_steps``.

    ``lean_render`` skips drawing what the observation never shows (the dashboard's reward text, a field polygon
    hidden under a plain fill): the same observations, ~1.4x faster steps (results/worldmodels/real_benchmark.json).
    """
    if max_episode_steps < 1:
        raise ValueError(f"max_episode_steps must be >= 1, got {max_episode_steps}")
    try:
        import Box2D  # noqa: F401
    except ImportError as err:
        raise ImportError(
            "CarRacing-v3 needs Box2D, which is not installed: pip install 'dreamlab[box2d]' "
            "(or pip install 'gymnasium[box2d]')"
        ) from err
    game = _road_renderer_class()()
    game.lean_render = lean_render
    env = gym.wrappers.TimeLimit(game, max_episode_steps)
    return CarRacingFrames(env, frame_size)
