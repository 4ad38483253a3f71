"""PLE's Pixelcopter without pygame: a gymnasium env and a native numpy vector env, registered by dreamlab.envs."""

from dreamlab.envs.pixelcopter.env import STATE_KEYS, PixelCopterEnv
from dreamlab.envs.pixelcopter.vector import PixelCopterVectorEnv

__all__ = ["STATE_KEYS", "PixelCopterEnv", "PixelCopterVectorEnv"]
