"""Frozen base policies: DPPO-style diffusion policy, DDIM sampler, BC pretraining, DPPO loader."""

from dsrl_ray.policies.base import BasePolicy
from dsrl_ray.policies.checkpoint import load_policy
from dsrl_ray.policies.diffusion_policy import DiffusionArch, DiffusionPolicy
from dsrl_ray.policies.dppo import load_dppo, save_dppo
from dsrl_ray.policies.normalizer import Normalizer
from dsrl_ray.policies.pretrain import PretrainConfig, PretrainResult, pretrain

__all__ = [
    "BasePolicy",
    "DiffusionArch",
    "DiffusionPolicy",
    "Normalizer",
    "PretrainConfig",
    "PretrainResult",
    "load_dppo",
    "load_policy",
    "pretrain",
    "save_dppo",
]
