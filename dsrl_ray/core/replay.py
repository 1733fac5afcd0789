"""Flat transition replay and an update-to-data rate limiter. Pure numpy/torch, no Ray.

The learner owns one :class:`FlatReplay` (a numpy ring buffer of latent-action
transitions) and one :class:`SamplesPerInsertLimiter` (how many gradient steps the
learner owes for the transitions inserted so far). Both are deterministic and expose
``state_dict()`` / ``load_state_dict()`` so a checkpoint restores them exactly.

A transition is one *chunk* step of the latent-action MDP::

    obs        (obs_dim,)        float32  observation the noise policy saw
    noise      (noise_dim,)      float32  w, the latent action (flattened chunk_len*act_dim)
    executed   (act_chunk_dim,)  float32  a = pi_dp(obs, w), the chunk the env executed
    reward     ()                float32  reward summed over the chunk
    next_obs   (obs_dim,)        float32  observation after the chunk
    terminated ()                bool     true end of the MDP (no bootstrap)
    truncated  ()                bool     time-limit cut (bootstrap as usual)

Learners declare more columns as ``extra_fields``: ``weights_seq_no`` always and, for DSRL-NA
with pairs from the actors, ``K`` aliasing pairs per transition (``pair_noise (K, noise_dim)``
draws ``w_k ~ N(0, I)``, ``pair_executed (K, act_chunk_dim)`` their chunks ``pi_dp(obs, w_k)``,
``pair_valid ()`` false for offline rows, which have none). :func:`select_pairs` picks one pair
per sampled row; ``sample(where="pair_valid")`` draws among the rows that have pairs.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Mapping, Sequence

import numpy as np
import torch

REQUIRED_FIELDS = ("obs", "noise", "executed", "reward", "next_obs", "terminated", "truncated")


def _to_numpy(value: Any) -> np.ndarray:
    """``value`` as a numpy array (torch tensors are moved to the CPU first)."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


class FlatReplay:
    """Uniform replay over flat transitions, stored in preallocated numpy arrays.

    Writes go to a ring: once ``capacity`` transitions are stored the oldest ones are
    overwritten. Sampling is uniform with replacement over the stored transitions.

    Args:
        capacity: maximum number of transitions held.
        obs_dim: length of one flattened observation.
        noise_dim: length of one flattened latent action ``w``.
        act_chunk_dim: length of one flattened executed chunk ``a``.
        extra_fields: optional ``{name: (shape, dtype)}`` of additional per-transition
            columns (e.g. ``{"weights_seq_no": ((), np.int64)}``); they are required in
            every ``add`` once declared.
        seed: seed of the buffer's own ``np.random.Generator`` (used by ``sample`` when
            no ``rng`` is passed; its state is part of ``state_dict``).
    """

    def __init__(
        self,
        capacity: int,
        obs_dim: int,
        noise_dim: int,
        act_chunk_dim: int,
        *,
        extra_fields: Mapping[str, tuple[tuple[int, ...], Any]] | None = None,
        seed: int | None = None,
    ) -> None:
        if capacity <= 0:
            raise ValueError(f"capacity must be positive, got {capacity}")
        self.capacity = int(capacity)
        self.obs_dim, self.noise_dim, self.act_chunk_dim = int(obs_dim), int(noise_dim), int(act_chunk_dim)
        self._specs: dict[str, tuple[tuple[int, ...], np.dtype]] = {
            "obs": ((self.obs_dim,), np.dtype(np.float32)),
            "noise": ((self.noise_dim,), np.dtype(np.float32)),
            "executed": ((self.act_chunk_dim,), np.dtype(np.float32)),
            "reward": ((), np.dtype(np.float32)),
            "next_obs": ((self.obs_dim,), np.dtype(np.float32)),
            "terminated": ((), np.dtype(np.bool_)),
            "truncated": ((), np.dtype(np.bool_)),
        }
        for name, (shape, dtype) in (extra_fields or {}).items():
            if name in self._specs:
                raise ValueError(f"extra field {name!r} clashes with a built-in field")
            self._specs[name] = (tuple(int(d) for d in shape), np.dtype(dtype))
        self._data = {
            name: np.zeros((self.capacity, *shape), dtype=dtype) for name, (shape, dtype) in self._specs.items()
        }
        self._ptr = 0  # next row to write
        self._size = 0  # rows holding data
        self._num_added = 0  # transitions ever added
        self._rows_where: dict[str, np.ndarray] = {}  # rows_where() results, dropped on every write
        self.rng = np.random.default_rng(seed)

    # ------------------------------------------------------------------ basics
    def __len__(self) -> int:
        return self._size

    @property
    def fields(self) -> tuple[str, ...]:
        """Names of all stored columns, built-in ones first."""
        return tuple(self._specs)

    @property
    def ptr(self) -> int:
        """Index of the row the next ``add`` writes first."""
        return self._ptr

    @property
    def num_added(self) -> int:
        """Number of transitions ever added (not capped by ``capacity``)."""
        return self._num_added

    # ------------------------------------------------------------------ writing
    def _validate(self, batch: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], int]:
        missing = [name for name in self._specs if name not in batch]
        if missing:
            raise KeyError(f"batch is missing field(s) {missing}; expected {list(self._specs)}")
        unknown = [name for name in batch if name not in self._specs]
        if unknown:
            raise KeyError(f"batch has unknown field(s) {unknown}; expected {list(self._specs)}")
        arrays: dict[str, np.ndarray] = {}
        n = None
        for name, (shape, dtype) in self._specs.items():
            arr = _to_numpy(batch[name])
            if arr.ndim != 1 + len(shape) or tuple(arr.shape[1:]) != shape:
                expected = "(" + ", ".join(["N", *map(str, shape)]) + ")"
                raise ValueError(f"field {name!r} has shape {tuple(arr.shape)}; expected {expected}")
            if n is None:
                n = arr.shape[0]
            elif arr.shape[0] != n:
                raise ValueError(f"field {name!r} has {arr.shape[0]} rows but earlier fields have {n}")
            if dtype == np.bool_ and arr.dtype != np.bool_:
                if not np.isin(arr, (0, 1)).all():
                    raise ValueError(f"field {name!r} must be boolean (0/1), got values outside {{0, 1}}")
            arrays[name] = arr.astype(dtype, copy=False)
        return arrays, int(n or 0)

    def add(self, batch: Mapping[str, Any]) -> None:
        """Append ``N`` transitions given as ``{field: array (N, *field_shape)}``.

        Arrays may be numpy arrays, torch tensors or nested lists. If ``N`` exceeds the
        capacity only the last ``capacity`` rows are kept (exactly as ``N`` single adds).

        Raises:
            KeyError: a field is missing or unknown.
            ValueError: a field has the wrong trailing shape, the fields disagree on
                ``N``, or a boolean field holds values other than 0/1.
        """
        arrays, n = self._validate(batch)
        if n == 0:
            return
        skip = max(0, n - self.capacity)  # rows that would be overwritten within this call
        start = (self._ptr + skip) % self.capacity
        idx = (start + np.arange(n - skip)) % self.capacity
        for name, arr in arrays.items():
            self._data[name][idx] = arr[skip:]
        self._ptr = (self._ptr + n) % self.capacity
        self._size = min(self.capacity, self._size + n)
        self._num_added += n
        self._rows_where.clear()

    # ------------------------------------------------------------------ reading
    def get(
        self,
        indices: np.ndarray,
        device: torch.device | str | None = None,
        fields: Sequence[str] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Rows ``indices`` (storage order) as a dict of torch tensors (copies); all fields, or ``fields``."""
        indices = np.asarray(indices, dtype=np.int64)
        if indices.size and (indices.min() < 0 or indices.max() >= self._size):
            raise IndexError(f"indices out of range for a buffer holding {self._size} transitions")
        names = self._check_fields(fields)
        return {name: torch.from_numpy(self._data[name][indices]).to(device) for name in names}

    def sample(
        self,
        batch_size: int,
        rng: np.random.Generator | None = None,
        device: torch.device | str | None = None,
        *,
        fields: Sequence[str] | None = None,
        where: str | None = None,
    ) -> dict[str, torch.Tensor]:
        """``batch_size`` transitions drawn uniformly with replacement.

        Args:
            batch_size: number of rows.
            rng: generator to draw the indices; the buffer's own ``self.rng`` if None.
            device: torch device of the returned tensors (CPU if None).
            fields: the columns to return (all if None).
            where: a boolean field: draw only among the rows where it is true.

        Returns:
            ``{field: tensor (batch_size, *field_shape)}``; float fields are float32,
            ``terminated``/``truncated`` are bool.
        """
        if self._size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        rng = self.rng if rng is None else rng
        if where is None:
            indices = rng.integers(0, self._size, size=int(batch_size))
        else:
            rows = self.rows_where(where)
            if rows.size == 0:
                raise ValueError(f"cannot sample: no stored row has {where!r} set (of {self._size} rows)")
            indices = rows[rng.integers(0, rows.size, size=int(batch_size))]
        return self.get(indices, device=device, fields=fields)

    def rows_where(self, field: str) -> np.ndarray:
        """Storage indices of the filled rows whose boolean ``field`` is true (cached until the next write)."""
        shape, dtype = self._specs.get(field, (None, None))
        if dtype != np.bool_ or shape != ():
            raise KeyError(f"{field!r} is not a scalar boolean field; boolean fields: "
                           f"{[n for n, (s, d) in self._specs.items() if d == np.bool_ and s == ()]}")
        if field not in self._rows_where:
            self._rows_where[field] = np.flatnonzero(self._data[field][: self._size])
        return self._rows_where[field]

    def _check_fields(self, fields: Sequence[str] | None) -> Sequence[str]:
        if fields is None:
            return tuple(self._specs)
        unknown = [name for name in fields if name not in self._specs]
        if unknown:
            raise KeyError(f"unknown field(s) {unknown}; expected some of {list(self._specs)}")
        return fields

    def storage(self) -> dict[str, np.ndarray]:
        """Read-only views of the filled rows, in storage (not insertion) order."""
        out = {}
        for name, arr in self._data.items():
            view = arr[: self._size]
            view.flags.writeable = False
            out[name] = view
        return out

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to restore this buffer bit-exactly (filled rows only)."""
        return {
            "capacity": self.capacity,
            "specs": {name: (shape, dtype.str) for name, (shape, dtype) in self._specs.items()},
            "ptr": self._ptr,
            "size": self._size,
            "num_added": self._num_added,
            "rng_state": self.rng.bit_generator.state,
            "data": {name: arr[: self._size].copy() for name, arr in self._data.items()},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a ``state_dict()``; the capacity and field layout must match."""
        specs = {name: (tuple(shape), np.dtype(dt)) for name, (shape, dt) in state["specs"].items()}
        if int(state["capacity"]) != self.capacity or specs != self._specs:
            raise ValueError(
                f"replay layout mismatch: checkpoint has capacity {state['capacity']} and fields {specs}; "
                f"this buffer has capacity {self.capacity} and fields {self._specs}"
            )
        size = int(state["size"])
        for name, arr in self._data.items():
            arr[...] = 0
            arr[:size] = state["data"][name]
        self._ptr, self._size, self._num_added = int(state["ptr"]), size, int(state["num_added"])
        self._rows_where.clear()
        self.rng.bit_generator.state = state["rng_state"]


def select_pairs(
    pair_noise: torch.Tensor, pair_executed: torch.Tensor, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """One stored aliasing pair per row, its index uniform in ``[0, K)`` (drawn with ``rng``).

    Args:
        pair_noise: ``(B, K, D)`` draws ``w_k``.
        pair_executed: ``(B, K, A)`` their chunks ``pi_dp(s, w_k)``.
        rng: generator of the pair indices.

    Returns:
        ``noise (B, D)`` and ``executed (B, A)`` of the chosen pairs.
    """
    b, k = pair_noise.shape[:2]
    if pair_executed.shape[:2] != (b, k):
        raise ValueError(
            f"pair_noise has shape {tuple(pair_noise.shape)} but pair_executed {tuple(pair_executed.shape)}; "
            "expected the same (B, K) leading dimensions"
        )
    rows = torch.arange(b, device=pair_noise.device)
    choice = torch.from_numpy(rng.integers(0, k, size=b)).to(pair_noise.device)
    return pair_noise[rows, choice], pair_executed[rows, choice]


class SamplesPerInsertLimiter:
    """Counts the gradient steps a learner owes for the transitions inserted so far.

    In the spirit of Acme/Reverb's ``SampleToInsertRatio``: the learner calls
    ``on_insert(n)`` when ``n`` transitions enter its replay, asks ``steps_owed()``,
    performs that many gradient steps and reports them with ``on_update(k)``. The
    target ratio ``utd`` (gradient steps per inserted transition) then holds exactly,
    independent of how inserts are batched or timed::

        steps_owed = floor(utd * counted) - updates_done
        counted    = 0                               while inserted < min_size
                   = inserted - min_size             afterwards (count_warmup=False)
                   = inserted                        afterwards (count_warmup=True)

    ``utd`` may be fractional (e.g. 0.25); it is held as an exact ``Fraction`` so there
    is no floating-point drift. Offline data preloaded into the replay should not be
    passed to ``on_insert``.

    Args:
        utd: gradient steps per inserted transition (>= 0).
        min_size: inserted transitions required before any step is owed (warm-up).
        count_warmup: whether the warm-up transitions earn steps once it ends (this
            makes the learner do ``utd * min_size`` steps at once when training starts).
    """

    def __init__(self, utd: float, min_size: int = 0, *, count_warmup: bool = False) -> None:
        if utd < 0:
            raise ValueError(f"utd must be >= 0, got {utd}")
        if min_size < 0:
            raise ValueError(f"min_size must be >= 0, got {min_size}")
        self.utd = Fraction(utd).limit_denominator(10**6)
        self.min_size = int(min_size)
        self.count_warmup = bool(count_warmup)
        self.num_inserted = 0
        self.num_updates = 0

    def _counted(self, inserted: int) -> int:
        if inserted < self.min_size:
            return 0
        return inserted if self.count_warmup else inserted - self.min_size

    def on_insert(self, n: int) -> int:
        """Record ``n`` inserted transitions; returns the steps owed afterwards."""
        if n < 0:
            raise ValueError(f"cannot insert a negative number of transitions ({n})")
        self.num_inserted += int(n)
        return self.steps_owed()

    def steps_owed(self) -> int:
        """Gradient steps the learner must still perform to meet the ratio."""
        return int(self.utd * self._counted(self.num_inserted)) - self.num_updates  # int() floors (>= 0)

    def on_update(self, k: int = 1) -> None:
        """Record ``k`` performed gradient steps; more than ``steps_owed()`` is an error."""
        if k < 0:
            raise ValueError(f"cannot record a negative number of updates ({k})")
        owed = self.steps_owed()
        if k > owed:
            raise ValueError(f"{k} updates recorded but only {owed} are owed (utd={self.utd})")
        self.num_updates += int(k)

    def insert_headroom(self, max_backlog: int) -> int:
        """Largest ``n`` such that after ``on_insert(n)`` at most ``max_backlog`` steps are owed.

        Use for back-pressure in async mode: hold back data (or runners) once the
        learner's backlog would exceed ``max_backlog``. Returns ``sys.maxsize`` when
        ``utd == 0`` (inserts never create work).
        """
        if max_backlog < 0:
            raise ValueError(f"max_backlog must be >= 0, got {max_backlog}")
        if self.utd == 0:
            import sys

            return sys.maxsize
        # owed(n) = floor(utd * counted(I + n)) - P <= B  <=>  utd * counted(I + n) < B + P + 1
        limit = Fraction(max_backlog + self.num_updates + 1) / self.utd  # counted must stay < limit
        max_counted = -(-limit.numerator // limit.denominator) - 1  # ceil(limit) - 1
        if max_counted < 0:
            return 0
        # Largest inserted total whose counted value <= max_counted.
        if self.count_warmup:
            # counted = I for I >= min_size, 0 below: every I < min_size is fine too.
            max_inserted = max(max_counted, self.min_size - 1)
        else:
            max_inserted = max_counted + self.min_size
        return max(0, max_inserted - self.num_inserted)

    def state_dict(self) -> dict[str, Any]:
        """Counters and settings; enough to restore the limiter exactly."""
        return {
            "utd": (self.utd.numerator, self.utd.denominator),
            "min_size": self.min_size,
            "count_warmup": self.count_warmup,
            "num_inserted": self.num_inserted,
            "num_updates": self.num_updates,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore ``state_dict()`` (settings included, so a resumed run keeps its ratio)."""
        num, den = state["utd"]
        self.utd = Fraction(int(num), int(den))
        self.min_size = int(state["min_size"])
        self.count_warmup = bool(state["count_warmup"])
        self.num_inserted = int(state["num_inserted"])
        self.num_updates = int(state["num_updates"])
