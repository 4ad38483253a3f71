"""dreamlab's environments, registered with gymnasium on import.

``import dreamlab.envs`` (or ``gym.make("dreamlab.envs:dreamlab/PixelCopter-v0")``) makes
``dreamlab/PixelCopter-v0`` available to ``gym.make`` and ``gym.make_vec``; the vectorised
:class:`~dreamlab.envs.pixelcopter.PixelCopterVectorEnv` is its vector entry point. Modules with heavy
dependencies (Pommerman, ViZDoom, Box2D) are imported only where they are used. Seeds, actions and counts are
checked in gymnasium's conventions by :mod:`dreamlab.envs.checks`.
"""

from gymnasium.envs.registration import register, registry

PIXELCOPTER_ID = "dreamlab/PixelCopter-v0"

if PIXELCOPTER_ID not in registry:
    register(
        id=PIXELCOPTER_ID,
        entry_point="dreamlab.envs.pixelcopter:PixelCopterEnv",
        vector_entry_point="dreamlab.envs.pixelcopter:PixelCopterVectorEnv",
    )
