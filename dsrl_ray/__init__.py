"""dsrl_ray: Diffusion Steering via Reinforcement Learning on Ray/RLlib.

Importing the package makes ``"DSRL"`` and the ``"dsrl/<task>"`` envs known to Tune and RLlib
without importing Ray itself: the names are registered the moment Ray's registries are imported
(see :mod:`dsrl_ray.rllib.registration`). ``dsrl_ray.core``, ``dsrl_ray.policies`` and
``dsrl_ray.envs`` never import Ray.
"""

from dsrl_ray.rllib.registration import register, register_on_ray_import

__version__ = "0.1.0"
__all__ = ["register"]

register_on_ray_import()
