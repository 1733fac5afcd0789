"""dsrl_ray: Diffusion Steering via Reinforcement Learning on Ray/RLlib."""

__version__ = "0.1.0"


def register() -> list[str]:
    """Register ``"DSRL"`` with Tune and the ``"dsrl/<task>"`` envs with RLlib (idempotent).

    Imports Ray and RLlib; ``import dsrl_ray.algorithm`` does the same. Returns the env names.
    """
    from dsrl_ray.algorithm.registration import register as _register

    return _register()
