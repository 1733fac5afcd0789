"""DSRL on RLlib: config, algorithm, module, learner, replay, registration.

The pure pieces (``replay``, ``losses``, ``networks``) import neither Ray nor RLlib;
import them directly (``from dsrl_ray.algorithm.replay import FlatReplay``). This
package ``__init__`` deliberately imports nothing so that importing them stays cheap.
"""
