"""wrec's reservoirs as scikit-learn transformers, a memory-capacity scorer, and the NARMA-10 task.

``make_pipeline(ESNTransformer(...), Ridge())`` is an echo state network (Jaeger 2001) with a ridge readout.
``transform`` returns one row of states per input row, as scikit-learn requires: row t is the state right after
input row t, ``x_t = F(x_{t−1}, σ W_in X[t])``, so no row is dropped.

The washout, a documented choice (``initial_state``):

* ``"fit"`` (default): ``fit`` (and ``fit_transform``) run the reservoir over X from rest and keep the state reached
  at its last row (``state_``); ``transform`` starts from that state, taking its X to follow the training X in
  time, as ReservoirPy's ``model.fit(X_train, ...)`` then ``model.run(X_test)`` does. ``transform`` never changes
  the estimator, so calling it twice gives the same rows.
* ``"rest"``: ``transform`` starts from rest too, so its rows are a function of its X alone.

Either way the first rows of a run from rest carry the transient. To leave them out of a readout's fit, weight them
zero: ``pipe.fit(X, y, ridge__sample_weight=w)`` with ``w[:washout] = 0`` fits the same readout as dropping them.

Examples:
    >>> import numpy as np
    >>> from sklearn.linear_model import Ridge
    >>> from sklearn.pipeline import make_pipeline
    >>> from wrec.sklearn import ESNTransformer
    >>> from wrec.tasks import narma10
    >>> u = np.random.default_rng(0).uniform(0, 0.5, 3_000)
    >>> y = narma10(u)
    >>> pipe = make_pipeline(ESNTransformer(100, spectral_radius=0.9, input_scale=0.5, seed=1), Ridge(1e-6))
    >>> w = np.r_[np.zeros(200), np.ones(1_800)]  # the washout: the first 200 rows get no weight
    >>> pipe = pipe.fit(u[:2_000, None], y[:2_000], ridge__sample_weight=w)
    >>> pipe[0].transform(u[2_000:, None]).shape  # continues from the state reached at the end of fit
    (1000, 100)
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from wrec import _checks, dynamics
from wrec._checks import Seed
from wrec.capacity.mc import memory_capacity
from wrec.capacity.thresholds import Surrogate, Threshold
from wrec.reservoir import models
from wrec.weights import gaussian, input_weights, spectral_radius

__all__ = ["ESNTransformer", "LinearReservoirTransformer", "MemoryCapacityScorer", "RateTransformer"]

INITIAL_STATES = ("fit", "rest")


@dataclass(frozen=True, eq=False)
class _Driven:
    """A reservoir record whose input term is given per step: ``drive(d) = d`` with d = σ W_in X[t], (1, N).

    Every other field and method is the record's, so wrec's own step functions run it unchanged; this is how a
    record built for a scalar input (w_in (N,)) takes F input features.
    """

    record: models._Reservoir

    def __getattr__(self, name: str) -> Any:
        return getattr(self.record, name)

    def drive(self, d: np.ndarray) -> np.ndarray:
        return d


class _ReservoirTransformer(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Fields, fitting and running shared by the reservoir transformers (abstract: use the subclasses).

    Learned attributes: ``W_`` (N, N) the recurrent matrix used (rescaled to ``spectral_radius``), ``w_in_`` (N, F)
    the input weights before σ, ``state_`` (N,) the state at the end of ``fit``'s X, ``n_features_in_``.
    """

    n_units: int | None
    spectral_radius: float | None
    input_scale: float
    W: Any
    w_in: Any
    initial_state: str
    seed: Seed

    @abstractmethod
    def _record(self, W: Any, w_in: np.ndarray) -> models._Reservoir:
        """The wrec reservoir record with recurrent matrix W and (unused, the input enters by ``_Driven``) w_in."""

    # -- fitting ----------------------------------------------------------------------------------------------------

    def _weights(self, n_features: int) -> tuple[Any, np.ndarray]:
        """(W_, w_in_): the given or drawn matrices, W rescaled to ``spectral_radius``; W and w_in from two
        independent streams of ``seed``, so giving one leaves the other as drawn."""
        if self.initial_state not in INITIAL_STATES:
            raise ValueError(f"initial_state must be one of {INITIAL_STATES}, got {self.initial_state!r}")
        rho = None if self.spectral_radius is None else _checks.real(self.spectral_radius, "spectral_radius",
                                                                      low=0.0, low_open=True)
        seed_w, seed_in = _checks.rng(self.seed).spawn(2)
        if self.W is None:
            n = 100 if self.n_units is None else _checks.integer(self.n_units, "n_units", low=1)
            W = gaussian(n, spectral_radius=rho, seed=seed_w)
        else:
            W = sp.csr_array(self.W, dtype=np.float64) if sp.issparse(self.W) else _checks.square(self.W).copy()
            n = W.shape[0]
            if self.n_units is not None and self.n_units != n:
                raise ValueError(f"n_units = {self.n_units} but W has shape {W.shape}; give n_units=None or {n}")
            if rho is not None:
                W = W * (rho / spectral_radius(W))
        if self.w_in is None:
            w_in = input_weights(n, n_inputs=n_features, seed=seed_in)
        else:
            w_in = _checks.array(self.w_in, "w_in", ndim=(1, 2))
            w_in = w_in[:, None] if w_in.ndim == 1 else w_in.copy()
            if w_in.shape != (n, n_features):
                raise ValueError(f"w_in must have shape (N, F) = ({n}, {n_features}) (or ({n},) for F = 1), got "
                                 f"{np.shape(self.w_in)}")
        return W, w_in

    def fit(self, X: Any, y: Any = None) -> _ReservoirTransformer:
        """Build the reservoir and run it over X from rest, keeping the state reached at its last row.

        Shape: X (T, F); y is ignored.
        """
        self.fit_transform(X, y)
        return self

    def fit_transform(self, X: Any, y: Any = None, **fit_params: Any) -> np.ndarray:
        """``fit``, returning the states over X from rest (``fit_params`` are ignored). Shape: X (T, F) -> (T, N)."""
        X = validate_data(self, X, dtype=np.float64, reset=True)
        _checks.real(self.input_scale, "input_scale")
        self.W_, self.w_in_ = self._weights(X.shape[1])
        self._record(self.W_, self.w_in_[:, 0])  # validates the subclass's fields
        states, self.state_ = self._run(X, np.zeros(self.W_.shape[0]))
        return states

    def transform(self, X: Any) -> np.ndarray:
        """The states after each row of X, from ``state_`` (``initial_state="fit"``) or from rest.

        Shape: X (T, F) -> (T, N), float64.
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        x0 = self.state_ if self.initial_state == "fit" else np.zeros_like(self.state_)
        return self._run(X, x0)[0]

    def _run(self, X: np.ndarray, x0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(states (T, N), final state (N,)) of the reservoir driven by σ W_in X[t] from x0."""
        params = _Driven(self._record(self.W_, self.w_in_[:, 0]))
        drive = (float(self.input_scale) * X) @ self.w_in_.T  # (T, N): one GEMM for every step's input term
        T, n = drive.shape
        states = np.empty((T, n))

        def record(t: int, state: np.ndarray, out: np.ndarray) -> None:
            states[t] = out[0]

        with np.errstate(over="ignore", invalid="ignore"):
            step = models.STEPS[type(params.record)]
            end = dynamics.run(step, params, x0[None].copy(), drive[:, None, :], T, on_step=record).state
        t = _checks.first_nonfinite_row(states)
        if t is not None:
            raise ValueError(f"the reservoir blew up: its state became non-finite at row {t} of {T}; lower the "
                             "spectral radius or the input scale")
        return states, end[0]

    @property
    def _n_features_out(self) -> int:
        return int(self.W_.shape[0])

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64"]
        return tags


class ESNTransformer(_ReservoirTransformer):
    """Echo state network (Jaeger 2001) with leak a: x_t = (1 − a) x_{t−1} + a tanh(W x_{t−1} + σ W_in X[t] + b).

    a = 1 (default) is the plain ESN, ``wrec.reservoir.ESN``; a < 1 the leaky-integrator ESN, ``LeakyESN``. This is
    ReservoirPy's ``Reservoir`` update with ``lr = a``, its ``W`` = ``W_``, ``Win`` = σ ``w_in_`` and ``bias`` = b.

    Args:
        n_units: N; None takes W's size when W is given, else 100.
        spectral_radius: ρ: W is rescaled to max|λ(W)| = ρ; None keeps a given W as it is (a drawn W then has
            entries N(0, 1/N)).
        input_scale: σ.
        leak: a in (0, 1].
        bias: b, a scalar or (N,).
        W: a given (N, N) recurrent matrix (dense or scipy.sparse), or None to draw a Gaussian one from ``seed``.
        w_in: given input weights, (N, F) or (N,) for F = 1, or None to draw N(0, 1) entries from ``seed``.
        initial_state: ``"fit"`` or ``"rest"``: where ``transform`` starts (module docstring).
        seed: an int (the same W and w_in at every fit), None or a Generator (drawn anew at every fit).
    """

    def __init__(self, n_units: int | None = None, *, spectral_radius: float | None = 0.9, input_scale: float = 1.0,
                 leak: float = 1.0, bias: Any = 0.0, W: Any = None, w_in: Any = None, initial_state: str = "fit",
                 seed: Seed = 0) -> None:
        self.n_units = n_units
        self.spectral_radius = spectral_radius
        self.input_scale = input_scale
        self.leak = leak
        self.bias = bias
        self.W = W
        self.w_in = w_in
        self.initial_state = initial_state
        self.seed = seed

    def _record(self, W: Any, w_in: np.ndarray) -> models._Reservoir:
        leak = _checks.real(self.leak, "leak", low=0.0, high=1.0, low_open=True)
        return models.LeakyESN(W, w_in=w_in, bias=self.bias, leak=leak)


class LinearReservoirTransformer(_ReservoirTransformer):
    """Linear reservoir: x_t = W x_{t−1} + σ W_in X[t] (``wrec.reservoir.Linear``; its memory, Jaeger 2001).

    Args: as ``ESNTransformer``'s (no leak, no bias); ρ < 1 keeps the states bounded.
    """

    def __init__(self, n_units: int | None = None, *, spectral_radius: float | None = 0.9, input_scale: float = 1.0,
                 W: Any = None, w_in: Any = None, initial_state: str = "fit", seed: Seed = 0) -> None:
        self.n_units = n_units
        self.spectral_radius = spectral_radius
        self.input_scale = input_scale
        self.W = W
        self.w_in = w_in
        self.initial_state = initial_state
        self.seed = seed

    def _record(self, W: Any, w_in: np.ndarray) -> models._Reservoir:
        return models.Linear(W, w_in=w_in)


class RateTransformer(_ReservoirTransformer):
    """Continuous-time rate network dh/dt = −h + W tanh(h) + σ W_in X, Euler step Δ (``wrec.reservoir.Rate``).

    Each row is tanh(h_t) (``observe="rate"``) or h_t (``"potential"``); with W_ij ~ N(0, g²/N) the autonomous
    network is chaotic for g > 1 (Sompolinsky, Crisanti & Sommers 1988).

    Args: as ``ESNTransformer``'s, plus ``dt`` (Δ > 0) and ``observe``; no leak or bias.
    """

    def __init__(self, n_units: int | None = None, *, spectral_radius: float | None = 0.9, input_scale: float = 1.0,
                 dt: float = 0.1, observe: str = "rate", W: Any = None, w_in: Any = None, initial_state: str = "fit",
                 seed: Seed = 0) -> None:
        self.n_units = n_units
        self.spectral_radius = spectral_radius
        self.input_scale = input_scale
        self.dt = dt
        self.observe = observe
        self.W = W
        self.w_in = w_in
        self.initial_state = initial_state
        self.seed = seed

    def _record(self, W: Any, w_in: np.ndarray) -> models._Reservoir:
        return models.Rate(W, w_in=w_in, dt=self.dt, observe=self.observe)


# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemoryCapacityScorer:
    """A scorer (``scoring=`` of ``GridSearchCV``): the memory capacity MC = Σ_k m_k (Jaeger 2001) of the states
    ``estimator.transform(X)`` gives, reconstructing column ``feature`` of X, by ``wrec.capacity.memory_capacity``.

    The first ``washout`` rows are left out; delays k = ``first_delay`` .. ``max_delay`` are summed (1 gives
    Jaeger's and ReservoirPy's sum, 0 adds the current input). A pipeline ending in a readout is scored by the
    steps before it.

    Examples:
        >>> import numpy as np
        >>> from sklearn.model_selection import GridSearchCV
        >>> from wrec.sklearn import ESNTransformer, MemoryCapacityScorer
        >>> u = np.random.default_rng(0).uniform(-1, 1, (4_000, 1))
        >>> search = GridSearchCV(ESNTransformer(50, input_scale=0.1), {"spectral_radius": [0.5, 0.95]},
        ...                       scoring=MemoryCapacityScorer(max_delay=60), cv=[(np.arange(500), np.arange(4_000))])
        >>> search.fit(u).best_params_
        {'spectral_radius': 0.95}
    """

    max_delay: int = 100
    washout: int = 100
    feature: int = 0
    first_delay: int = 0
    threshold: Threshold | None = Surrogate()

    def __call__(self, estimator: Any, X: Any, y: Any = None) -> float:
        if not hasattr(estimator, "transform") and isinstance(estimator, Pipeline):
            estimator = estimator[:-1]
        X = check_array(X, dtype=np.float64)
        washout = _checks.integer(self.washout, "washout", low=0)
        feature = _checks.integer(self.feature, "feature", low=0, high=X.shape[1] - 1)
        states = estimator.transform(X)[washout:]
        mc = memory_capacity(states, X[washout:, feature], self.max_delay, threshold=self.threshold)
        return mc.total_from(self.first_delay)
