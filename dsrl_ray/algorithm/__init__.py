"""DSRL on RLlib: config, algorithm, module, learner, replay, registration.

Importing this package registers ``"DSRL"`` with Tune and the ``"dsrl/<task>"`` envs
(see :mod:`dsrl_ray.algorithm.registration`), so it imports Ray and RLlib. The pure pieces
(``replay``, ``losses``, ``networks``) import neither themselves.

Modules: ``config`` (:class:`DSRLConfig`), ``algorithm`` (:class:`DSRL`), ``module``
(:class:`DSRLTorchRLModule`), ``learner`` (:class:`DSRLTorchLearner`), ``env`` (the
registered envs), ``transitions`` (episodes/demos -> replay rows), ``callbacks``
(success metrics), ``tensorboard`` (:class:`TensorBoardLogger`), ``base_policy``.
"""

from dsrl_ray.algorithm.algorithm import DSRL
from dsrl_ray.algorithm.config import DSRLConfig
from dsrl_ray.algorithm.learner import DSRLTorchLearner
from dsrl_ray.algorithm.module import DSRLTorchRLModule
from dsrl_ray.algorithm.registration import register
from dsrl_ray.algorithm.tensorboard import TensorBoardLogger

register()

__all__ = ["DSRL", "DSRLConfig", "DSRLTorchLearner", "DSRLTorchRLModule", "TensorBoardLogger", "register"]
