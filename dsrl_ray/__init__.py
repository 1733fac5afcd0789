"""dsrl_ray: Diffusion Steering via Reinforcement Learning on Ray/RLlib."""

__version__ = "0.1.0"
