"""Frozen base policies: DPPO-style diffusion policy (DDIM), pi0-style flow policy (Euler/midpoint ODE),
BC pretraining of either, DPPO loader."""

from dsrl_ray.policies.base import BasePolicy
from dsrl_ray.policies.checkpoint import load_policy
from dsrl_ray.policies.diffusion_policy import DiffusionArch, DiffusionPolicy
from dsrl_ray.policies.dppo import load_dppo, save_dppo
from dsrl_ray.policies.flow_policy import FlowArch, FlowPolicy
from dsrl_ray.policies.normalizer import Normalizer
from dsrl_ray.policies.policy_types import DEFAULT_POLICY_TYPE, POLICY_TYPES, make_arch
from dsrl_ray.policies.pretrain import PretrainConfig, PretrainResult, pretrain

__all__ = [
    "DEFAULT_POLICY_TYPE",
    "POLICY_TYPES",
    "BasePolicy",
    "DiffusionArch",
    "DiffusionPolicy",
    "FlowArch",
    "FlowPolicy",
    "Normalizer",
    "PretrainConfig",
    "PretrainResult",
    "load_dppo",
    "load_policy",
    "make_arch",
    "pretrain",
    "save_dppo",
]
