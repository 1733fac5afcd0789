"""Typed experiment configs: one YAML file describes one DSRL training run (no Ray needed to load one).

``schema`` (the dataclasses), ``loader`` (YAML, profiles, overrides, shipped configs),
``to_rllib`` (an experiment as a ``DSRLConfig``; imports Ray).
"""

from dsrl_ray.experiment.loader import CONFIG_DIR, flag_overrides, load_experiment, resolve_config
from dsrl_ray.experiment.schema import VARIANTS, Experiment, ExperimentError

__all__ = ["CONFIG_DIR", "VARIANTS", "Experiment", "ExperimentError", "flag_overrides", "load_experiment",
           "resolve_config"]
