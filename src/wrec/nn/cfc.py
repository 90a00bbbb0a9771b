"""Closed-form continuous-time (CfC) cells and low-rank × sparse recurrent weights as ``torch.nn.GRU``-style modules.

Tumma, Lechner, Loo, Hasani & Rus, "Leveraging low-rank and sparse recurrent connectivity for robust closed-loop
control", ICLR 2024 (arXiv 2310.03915); the CfC cell of Hasani et al., Nature Machine Intelligence 2022 (ncps's
``CfCCell``). Every recurrent matrix is

    W_rec(r, s) = (P Qᵀ) ⊙ M,   P = U_r Σ_r^½,  Qᵀ = Σ_r^½ V_rᵀ  (rank-r SVD of the dense initial W₀),

with P, Q trained and M ∈ {0, 1} a fixed buffer of sparsity s (``LowRankSparse``; ``rank=None`` keeps one dense
trained matrix, still masked). The CfC step, with each head k ∈ {1, 2, a, b} split as W_k^in u + W_k^rec h + b_k:

    f1 = tanh(z_1), f2 = tanh(z_2), τ = σ(z_a·Δt + z_b);  h_t = f1 ⊙ (1 − τ) + τ ⊙ f2   ('default')
    h_t = f1 + τ ⊙ f2   ('no_gate');   h_t = −A ⊙ exp(−Δt(|w_τ| + |z_1|)) ⊙ z_1 + A   ('pure')

``CfC`` and ``LowRankSparseLSTM``/``LowRankSparseGRU``/``LowRankSparseRNN`` follow
``torch.nn.GRU``'s contract through ``wrec.rnn``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from numbers import Real
from typing import cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wrec.rnn import RNNInputError, RNNOptions, prepare_input, rnn_forward
from wrec.weights import low_rank_sparse_factors

MODES = ("default", "no_gate", "pure")
INITS = ("glorot", "orthogonal", "uniform")
MASKS = ("bernoulli", "exact")
_HEADS = ("ff1", "ff2", "time_a", "time_b")


def _check_rank(rank: object, limit: int, what: str) -> int | None:
    if rank is None:
        return None
    if isinstance(rank, bool) or not isinstance(rank, int):
        raise TypeError(f"rank must be an int or None (dense), got {type(rank).__name__}")
    if not 1 <= rank <= limit:
        raise ValueError(f"rank must be None (dense) or an int in [1, {limit}] ({what}), got {rank}")
    return rank


def _check_sparsity(sparsity: object) -> float:
    if isinstance(sparsity, bool) or not isinstance(sparsity, Real):
        raise TypeError(f"sparsity must be a real number in [0, 1), got {type(sparsity).__name__}")
    value = float(sparsity)
    if not (math.isfinite(value) and 0 <= value < 1):
        raise ValueError(f"sparsity must be in [0, 1) (the fraction of recurrent weights masked to 0), got {sparsity}")
    return value


def _check_choice(value: object, name: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(repr(c) for c in choices)}, got {value!r}")
    return value


def _numpy_rng(generator: torch.Generator | None) -> np.random.Generator:
    """A NumPy stream seeded from ``generator`` (torch's global RNG when None, as nn.GRU's init uses)."""
    return np.random.default_rng(int(torch.randint(0, 2**62, (), generator=generator)))


class LowRankSparse(nn.Module):
    """A trained recurrent matrix W = (P Qᵀ) ⊙ M with P, Q from the rank-r SVD of W₀ and a fixed 0/1 mask M.

    ``rank=None`` trains W₀ itself (dense, n_out·n_in parameters; still ⊙ M); an int r trains P (n_out, r) and
    Q (n_in, r), i.e. r·(n_out + n_in) parameters. rank(P Qᵀ) = r; rank((P Qᵀ) ⊙ M) may exceed r once s > 0.
    ``init``: W₀ = 'glorot' (xavier_uniform), 'orthogonal', 'uniform' (U(±1/√n_in), torch's RNN default) or a
    given (n_out, n_in) tensor. ``mask``: 'bernoulli' (i.i.d. Bernoulli(1 − s)), 'exact' (exactly
    round(n_out·n_in·(1 − s)) ones) or a given 0/1 tensor (e.g. shared with another head). ``generator`` draws
    W₀ and M (torch's global RNG when None).

    Shape: ``forward()`` returns W (n_out, n_in).
    """

    mask: Tensor  # buffer: M

    def __init__(self, n_out: int, n_in: int, rank: int | None = None, sparsity: float = 0.0,
                 init: str | Tensor = "glorot", mask: str | Tensor = "bernoulli",
                 generator: torch.Generator | None = None, *, device=None, dtype=None) -> None:
        super().__init__()
        for value, name in ((n_out, "n_out"), (n_in, "n_in")):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.n_out, self.n_in = n_out, n_in
        self.rank = _check_rank(rank, min(n_out, n_in), f"min(n_out, n_in) = {min(n_out, n_in)}")
        self.sparsity = _check_sparsity(sparsity)
        factory = {"device": device, "dtype": dtype}
        if self.rank is None:
            self.weight = nn.Parameter(torch.empty(n_out, n_in, **factory))
            self.register_parameter("P", None)
            self.register_parameter("Q", None)
        else:
            self.register_parameter("weight", None)
            self.P = nn.Parameter(torch.empty(n_out, self.rank, **factory))
            self.Q = nn.Parameter(torch.empty(n_in, self.rank, **factory))
        self.register_buffer("mask", torch.ones(n_out, n_in, **factory))
        self.init = init if isinstance(init, str) else "given"
        self.mask_kind = mask if isinstance(mask, str) else "given"
        self.reset_parameters(generator, init=init, mask=mask)

    def reset_parameters(self, generator: torch.Generator | None = None, *, init: str | Tensor | None = None,
                         mask: str | Tensor | None = None, rng: np.random.Generator | None = None) -> None:
        """Redraw W₀ and M (defaults: the constructor's ``init`` and mask kind) and refactor W₀.

        ``rng`` (a NumPy Generator) takes precedence over ``generator``; containers use it to draw many blocks
        from one stream.
        """
        init = self.init if init is None else init
        mask = self.mask_kind if mask is None else mask
        if isinstance(init, str) and init == "given":
            raise ValueError("this LowRankSparse was built from a given W₀: pass init= (a string or a tensor)")
        if isinstance(init, str):
            _check_choice(init, "init", INITS)
            w0: str | np.ndarray = init
        else:
            if not isinstance(init, Tensor) or tuple(init.shape) != (self.n_out, self.n_in):
                got = tuple(init.shape) if isinstance(init, Tensor) else type(init).__name__
                raise ValueError(f"init must be one of {INITS} or a tensor of shape ({self.n_out}, {self.n_in}), "
                                 f"got {got}")
            w0 = init.detach().to("cpu", torch.float64).numpy()
        given_mask = None
        if isinstance(mask, str):
            if mask == "given":
                given_mask = self.mask.detach().clone()
                mask = "bernoulli"
            _check_choice(mask, "mask", MASKS)
        else:
            if not isinstance(mask, Tensor) or tuple(mask.shape) != (self.n_out, self.n_in):
                got = tuple(mask.shape) if isinstance(mask, Tensor) else type(mask).__name__
                raise ValueError(f"mask must be one of {MASKS} or a 0/1 tensor of shape ({self.n_out}, {self.n_in}), "
                                 f"got {got}")
            if not bool(((mask == 0) | (mask == 1)).all()):
                raise ValueError("mask must hold only 0 and 1")
            given_mask, mask = mask.detach(), "bernoulli"
        gen = _numpy_rng(generator) if rng is None else rng
        rank = self.rank if self.rank is not None else min(self.n_out, self.n_in)
        P, Q, M = low_rank_sparse_factors(self.n_out, self.n_in, rank, self.sparsity, init=w0, mask=mask, seed=gen)
        with torch.no_grad():
            if self.rank is None:
                self.weight.copy_(torch.from_numpy(P @ Q.T))  # W₀ up to the SVD's rounding (1e-15)
            else:
                self.P.copy_(torch.from_numpy(P))
                self.Q.copy_(torch.from_numpy(Q))
            self.mask.copy_(torch.from_numpy(M) if given_mask is None else given_mask)

    def forward(self) -> Tensor:
        """W = (P Qᵀ) ⊙ M (dense: W ⊙ M). Shape: (n_out, n_in)."""
        W = self.weight if self.rank is None else self.P @ self.Q.t()
        return W * self.mask

    def extra_repr(self) -> str:
        return (f"{self.n_out}, {self.n_in}, rank={self.rank}, sparsity={self.sparsity}, init={self.init!r}, "
                f"mask={self.mask_kind!r}")


class LowRankSparseParametrization(nn.Module):
    """A ``torch.nn.utils.parametrize`` parametrization W = (P Qᵀ) ⊙ M: the trained originals are P ``(n_out, r)``
    and Q ``(n_in, r)``, set from a weight W₀ by its rank-r SVD (P = U_r Σ_r^½, Q = V_r Σ_r^½); M is a fixed 0/1
    buffer. Use ``low_rank_sparse_`` to put it on a module's weight."""

    mask: Tensor  # buffer: M

    def __init__(self, rank: int, mask: Tensor) -> None:
        super().__init__()
        self.rank = rank
        self.register_buffer("mask", mask)

    def forward(self, P: Tensor, Q: Tensor) -> Tensor:
        return (P @ Q.T) * self.mask

    def right_inverse(self, W: Tensor) -> tuple[Tensor, Tensor]:
        U, S, Vh = torch.linalg.svd(W.detach().double(), full_matrices=False)
        root = S[: self.rank].sqrt()
        return (U[:, : self.rank] * root).to(W), (Vh[: self.rank].T * root).to(W)

    def extra_repr(self) -> str:
        return f"rank={self.rank}, sparsity={1 - float(self.mask.mean()):.3g}"


def low_rank_sparse_(module: nn.Module, name: str, rank: int, sparsity: float = 0.0, *, mask: str = "bernoulli",
                     generator: torch.Generator | None = None) -> nn.Module:
    """Train ``module.<name>`` as W = (P Qᵀ) ⊙ M from now on (in place; returns ``module``).

    P, Q come from the rank-r SVD of the weight's current value (so a dense initialisation keeps its scale along
    its top r directions); M is drawn as in ``LowRankSparse`` (``mask`` 'bernoulli' or 'exact', sparsity s)
    from ``generator``. Any torch optimiser then trains P and Q (``module.parametrizations.<name>.original0/1``).
    """
    from torch.nn.utils import parametrize

    W = getattr(module, name)
    if not isinstance(W, Tensor) or W.dim() != 2:
        got = f"shape {tuple(W.shape)}" if isinstance(W, Tensor) else type(W).__name__
        raise ValueError(f"{name} must be a 2-D weight of the module, got {got}")
    n_out, n_in = W.shape
    r = _check_rank(rank, min(n_out, n_in), f"min{tuple(W.shape)} = {min(n_out, n_in)}")
    if r is None:
        raise ValueError("rank must be an int (use the plain weight for a dense one)")
    sparsity = _check_sparsity(sparsity)
    _check_choice(mask, "mask", MASKS)
    _, _, M = low_rank_sparse_factors(n_out, n_in, r, sparsity, init=W.detach().double().cpu().numpy(), mask=mask,
                                      seed=_numpy_rng(generator))
    parametrize.register_parametrization(module, name,
                                         LowRankSparseParametrization(r, torch.from_numpy(M).to(W.detach())))
    return module


def _blocks(modules: nn.ModuleDict) -> dict[str, LowRankSparse]:
    """The ``LowRankSparse`` blocks held in ``modules`` by name, typed as such (a ModuleDict's values are
    plain Modules to a type checker)."""
    return {name: cast(LowRankSparse, block) for name, block in modules.items()}


def _lecun(x: Tensor) -> Tensor:
    return 1.7159 * torch.tanh(0.666 * x)


def _uniform(gen: np.random.Generator, bound: float, shape: tuple[int, ...]) -> Tensor:
    return torch.from_numpy(gen.uniform(-bound, bound, shape))


def _timespan_step(ts: object, batch: int, like: Tensor) -> float | Tensor:
    """Δt of one step as a float or a (B, 1) tensor."""
    if isinstance(ts, Tensor):
        if ts.dim() == 0:
            ts = ts.reshape(1, 1)
        elif ts.dim() == 1 and ts.size(0) == batch:
            ts = ts.unsqueeze(1)
        if tuple(ts.shape) not in ((batch, 1), (1, 1)):
            raise ValueError(f"ts must be a float or a tensor of shape ({batch}, 1), got {tuple(ts.shape)}")
        if not bool(torch.isfinite(ts).all()) or bool((ts < 0).any()):
            raise ValueError("ts must be finite and >= 0 (elapsed time per step)")
        return ts.to(like.dtype)
    if isinstance(ts, bool) or not isinstance(ts, Real) or not math.isfinite(ts) or ts < 0:
        raise ValueError(f"ts must be a finite number >= 0 or a (B, 1) tensor, got {ts!r}")
    return float(ts)


class CfCCell(nn.Module):
    """One CfC cell (ncps ``CfCCell``) with every recurrent block W_k^rec a ``LowRankSparse``.

    x̃ = [u; h]; each head z_k = W_k^in u + W_k^rec h + b_k; f1 = tanh(z_1), f2 = tanh(z_2),
    τ = σ(z_a·Δt + z_b); 'default': h' = f1 ⊙ (1 − τ) + τ ⊙ f2; 'no_gate': h' = f1 + τ ⊙ f2; 'pure' (one head):
    h' = −A ⊙ exp(−Δt(|w_τ| + |z_1|)) ⊙ z_1 + A. With ``backbone_layers = L > 0``, x̃ ← LeCun(W_bb x̃ + b_bb) (L
    layers of ``backbone_units``; LeCun(v) = 1.7159 tanh(0.666 v)) and the structure is on the h-columns of the first
    backbone layer (a (units, H) block); the heads are then dense.

    Init as ncps: xavier_uniform of each whole (H, F + H) head (W₀ = its h-columns, or an orthogonal/uniform W₀ with
    ``init``), biases U(±1/√(F + H)); in 'pure' mode A and w_τ are (1, H) tensors that ncps's ``init_weights`` also
    redraws with xavier_uniform, and so does this cell. ``shared_mask`` gives every head the same M.
    Parameters: ``weight_in`` (K·H, F) the heads' input columns, ``bias`` (K·H,), ``rec[k]`` the recurrent blocks.

    Shape: input (B, F) or (F,); hx (B, H) or (H,) (None: zeros); ts a float or (B, 1); returns h' like hx.
    """

    def __init__(self, input_size: int, hidden_size: int, mode: str = "default", rank: int | None = None,
                 sparsity: float = 0.0, init: str = "glorot", mask: str = "bernoulli", shared_mask: bool = False,
                 backbone_layers: int = 0, backbone_units: int = 128, generator: torch.Generator | None = None,
                 device=None, dtype=None, *, bias: bool = True) -> None:
        super().__init__()
        for value, name in ((input_size, "input_size"), (hidden_size, "hidden_size")):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.mode = _check_choice(mode, "mode", MODES)
        self.init = _check_choice(init, "init", INITS)
        self.mask_kind = _check_choice(mask, "mask", MASKS)
        if isinstance(backbone_layers, bool) or not isinstance(backbone_layers, int) or backbone_layers < 0:
            raise ValueError(f"backbone_layers must be an int >= 0, got {backbone_layers!r}")
        if isinstance(backbone_units, bool) or not isinstance(backbone_units, int) or backbone_units < 1:
            raise ValueError(f"backbone_units must be a positive int, got {backbone_units!r}")
        for value, name in ((shared_mask, "shared_mask"), (bias, "bias")):
            if not isinstance(value, bool):
                raise TypeError(f"{name} should be of type bool, got: {type(value).__name__}")
        self.input_size, self.hidden_size = input_size, hidden_size
        self.backbone_layers, self.backbone_units = backbone_layers, backbone_units
        self.shared_mask, self.bias_enabled = shared_mask, bias
        self.heads = ("ff1",) if mode == "pure" else _HEADS
        n_rec = backbone_units if backbone_layers else hidden_size  # rows of each structured block
        limit = min(n_rec, hidden_size)
        self.rank = _check_rank(rank, limit, f"hidden_size = {hidden_size}" if not backbone_layers
                                else f"min(backbone_units, hidden_size) = {limit}")
        self.sparsity = _check_sparsity(sparsity)
        factory = {"device": device, "dtype": dtype}
        K, H = len(self.heads), hidden_size
        blocks = ("backbone",) if backbone_layers else self.heads
        # placeholder draws from a private generator (reset_parameters redraws): torch's global RNG stays untouched
        self.rec = nn.ModuleDict({k: LowRankSparse(n_rec, H, self.rank, self.sparsity, "glorot", mask,
                                                   generator=torch.Generator(), **factory) for k in blocks})
        self.weight_in = nn.Parameter(torch.empty(n_rec * len(blocks), input_size, **factory))
        self.bias = nn.Parameter(torch.empty(n_rec * len(blocks), **factory)) if bias else None
        if backbone_layers:
            self.backbone = nn.ModuleList(nn.Linear(backbone_units, backbone_units, bias=bias, **factory)
                                          for _ in range(backbone_layers - 1))
            self.head_weight = nn.Parameter(torch.empty(K * H, backbone_units, **factory))
            self.head_bias = nn.Parameter(torch.empty(K * H, **factory)) if bias else None
        if mode == "pure":
            self.A = nn.Parameter(torch.empty(H, **factory))
            self.w_tau = nn.Parameter(torch.empty(H, **factory))
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Redraw every weight as ncps does (class docstring); ``generator`` makes it reproducible."""
        gen = _numpy_rng(generator)
        F_in, H = self.input_size, self.hidden_size
        blocks = list(_blocks(self.rec).values())
        n_rec = blocks[0].n_out
        fan_in = F_in + H
        shared = None
        w_in, b = [], []
        for block in blocks:
            head = _uniform(gen, math.sqrt(6.0 / (fan_in + n_rec)), (n_rec, fan_in))  # xavier of [W_in | W_rec]
            w_in.append(head[:, :F_in])
            w0 = head[:, F_in:] if self.init == "glorot" else self.init
            block.reset_parameters(init=w0, mask=self.mask_kind if shared is None else shared, rng=gen)
            if self.shared_mask and shared is None:
                shared = block.mask
            b.append(_uniform(gen, 1.0 / math.sqrt(fan_in), (n_rec,)))
        with torch.no_grad():
            self.weight_in.copy_(torch.cat(w_in))
            if self.bias is not None:
                self.bias.copy_(torch.cat(b))
            if self.backbone_layers:
                U = self.backbone_units
                for lin in cast("list[nn.Linear]", list(self.backbone)):
                    lin.weight.copy_(_uniform(gen, math.sqrt(6.0 / (2 * U)), (U, U)))
                    if lin.bias is not None:
                        lin.bias.copy_(_uniform(gen, 1.0 / math.sqrt(U), (U,)))
                heads = [_uniform(gen, math.sqrt(6.0 / (U + H)), (H, U)) for _ in self.heads]
                self.head_weight.copy_(torch.cat(heads))
                if self.head_bias is not None:
                    self.head_bias.copy_(torch.cat([_uniform(gen, 1.0 / math.sqrt(U), (H,)) for _ in self.heads]))
            if self.mode == "pure":
                bound = math.sqrt(6.0 / (H + 1))  # xavier_uniform of a (1, H) tensor, as ncps
                self.A.copy_(_uniform(gen, bound, (H,)))
                self.w_tau.copy_(_uniform(gen, bound, (H,)))

    def recurrent_weight(self) -> Tensor:
        """All structured blocks stacked: (K·H, H), or the backbone's (units, H). Computed once per sequence."""
        mats = [block() for block in self.rec.values()]
        return mats[0] if len(mats) == 1 else torch.cat(mats)

    def input_projection(self, u: Tensor) -> Tensor:
        """W^in u + b for any leading shape. Shape: (..., F) -> (..., K·H) (backbone: (..., units))."""
        return F.linear(u, self.weight_in, self.bias)

    def step(self, h: Tensor, zin: Tensor, ts: float | Tensor, W_rec: Tensor) -> Tensor:
        """One step, in wrec's step order (params = the cell, state ``h``, inputs ``zin``), from the precomputed
        input projection ``zin`` and the stacked ``W_rec`` (pure function of its arguments and the cell's
        parameters). Shape: h (B, H), zin (B, K·H), ts float or (B, 1) -> (B, H)."""
        z = torch.addmm(zin, h, W_rec.t())
        if self.backbone_layers:
            x = _lecun(z)
            for lin in self.backbone:
                x = _lecun(lin(x))
            z = F.linear(x, self.head_weight, self.head_bias)
        H = self.hidden_size
        if self.mode == "pure":
            return -self.A * torch.exp(-ts * (self.w_tau.abs() + z.abs())) * z + self.A
        z1, z2, za, zb = z.split(H, dim=1)
        f1, f2 = torch.tanh(z1), torch.tanh(z2)
        tau = torch.sigmoid(za * ts + zb)
        if self.mode == "no_gate":
            return f1 + tau * f2
        return f1 * (1.0 - tau) + tau * f2

    def sequence(self, x: Tensor, h0: Tensor, ts: float | Tensor) -> tuple[Tensor, Tensor]:
        """Run T steps. Shape: x (T, B, F), h0 (B, H), ts a float or (T, B, 1); returns (T, B, H) and (B, H)."""
        W = self.recurrent_weight()
        zin = self.input_projection(x)  # (T, B, K·H), all steps at once
        # unbind, not zin[t]: each indexing's backward would write a full (T, B, K·H) zero tensor
        steps = zin.unbind(0)
        dts: Sequence[float | Tensor] = [ts] * len(steps) if isinstance(ts, float) else ts.unbind(0)
        h, outs = h0, []
        for z_t, dt in zip(steps, dts, strict=True):
            h = self.step(h, z_t, dt, W)
            outs.append(h)
        return torch.stack(outs), h

    def forward(self, input: Tensor, hx: Tensor | None = None, ts: float | Tensor = 1.0) -> Tensor:
        """h_t from u_t = ``input`` and h_{t−1} = ``hx`` after Δt = ``ts`` (class docstring for the equations)."""
        if not isinstance(input, Tensor) or input.dim() not in (1, 2):
            got = f"{input.dim()}-D" if isinstance(input, Tensor) else type(input).__name__
            raise ValueError(f"CfCCell: Expected input to be 1D or 2D, got {got} instead")
        if input.size(-1) != self.input_size:
            raise ValueError(f"input.size(-1) must be equal to input_size. Expected {self.input_size}, "
                             f"got {input.size(-1)}")
        if input.dtype != self.weight_in.dtype:
            raise ValueError(f"input dtype ({input.dtype}) does not match weight dtype ({self.weight_in.dtype})")
        batched = input.dim() == 2
        u = input if batched else input.unsqueeze(0)
        if hx is None:
            h = u.new_zeros(u.size(0), self.hidden_size)
        else:
            if not isinstance(hx, Tensor) or hx.dim() != input.dim() or hx.size(-1) != self.hidden_size \
                    or (batched and hx.size(0) != u.size(0)):
                got_hx = tuple(hx.shape) if isinstance(hx, Tensor) else type(hx).__name__
                want = (u.size(0), self.hidden_size) if batched else (self.hidden_size,)
                raise ValueError(f"hx must have shape {want}, got {got_hx}")
            h = hx if batched else hx.unsqueeze(0)
        out = self.step(h, self.input_projection(u), _timespan_step(ts, u.size(0), u), self.recurrent_weight())
        return out if batched else out.squeeze(0)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}, mode={self.mode!r}, rank={self.rank}, sparsity={self.sparsity}"
        if self.backbone_layers:
            s += f", backbone_layers={self.backbone_layers}, backbone_units={self.backbone_units}"
        return s


class CfC(nn.Module):
    """A stack of ``CfCCell`` layers with ``torch.nn.GRU``'s constructor and forward contract.

    Positional arguments as ``nn.GRU``; keyword-only: ``mode``, ``rank``, ``sparsity``, ``init``, ``mask``,
    ``shared_mask``, ``backbone_layers``, ``backbone_units``, ``generator`` (see ``CfCCell``). Cells are
    ``cell_l{k}`` (and ``cell_l{k}_reverse``). ``forward(input, hx=None, timespans=None)``: ``timespans`` is Δt per
    step, None (1), a float, or a tensor laid out like the input without its feature dim ((T, B), (B, T) with
    batch_first, (T,) unbatched; a trailing 1 allowed); the reverse direction sees it reversed with the input.

    Shape: input (T, B, F), (B, T, F) if batch_first, or (T, F); hx (D·L, B, H) or (D·L, H); returns output
    (T, B, D·H) in the input's layout and h_n like hx.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, device=None,
                 dtype=None, *, mode: str = "default", rank: int | None = None, sparsity: float = 0.0,
                 init: str = "glorot", mask: str = "bernoulli", shared_mask: bool = False, backbone_layers: int = 0,
                 backbone_units: int = 128, generator: torch.Generator | None = None) -> None:
        super().__init__()
        opts = RNNOptions(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional)
        self._opts = opts
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout, self.bidirectional = bias, batch_first, opts.dropout, bidirectional
        self.mode, self.rank, self.sparsity = mode, rank, sparsity
        for layer in range(num_layers):
            for direction in range(opts.num_directions):
                self.add_module(f"cell{opts.suffix(layer, direction)}", CfCCell(
                    opts.layer_input_size(layer), hidden_size, mode, rank, sparsity, init, mask, shared_mask,
                    backbone_layers, backbone_units, generator, device, dtype, bias=bias))

    def cell(self, layer: int = 0, direction: int = 0) -> CfCCell:
        return getattr(self, f"cell{self._opts.suffix(layer, direction)}")

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        for layer in range(self.num_layers):
            for direction in range(self._opts.num_directions):
                self.cell(layer, direction).reset_parameters(generator)

    def flatten_parameters(self) -> None:
        """No-op, for code written against ``torch.nn.GRU``."""

    def extra_repr(self) -> str:
        s = self._opts.extra_repr() + f", mode={self.mode!r}"
        if self.rank is not None:
            s += f", rank={self.rank}"
        if self.sparsity:
            s += f", sparsity={self.sparsity}"
        return s

    def _timespans(self, input: Tensor, timespans: object) -> float | Tensor:
        if timespans is None:
            return 1.0
        if not isinstance(timespans, Tensor) or timespans.dim() == 0:
            return _timespan_step(float(timespans) if isinstance(timespans, Tensor) else timespans, 1, input)
        ts = timespans
        lead = tuple(input.shape[:-1])  # (T, B), (B, T) or (T,)
        if ts.dim() == len(lead) + 1 and ts.size(-1) == 1:
            ts = ts.squeeze(-1)
        if tuple(ts.shape) != lead:
            raise RNNInputError(f"timespans must be a float or a tensor of shape {lead} (the input's without its "
                                f"feature dim, optionally with a trailing 1), got {tuple(timespans.shape)}")
        if not bool(torch.isfinite(ts).all()) or bool((ts < 0).any()):
            raise RNNInputError("timespans must be finite and >= 0 (elapsed time per step)")
        if input.dim() == 2:
            ts = ts.unsqueeze(1)
        elif self.batch_first:
            ts = ts.t()
        return ts.to(input.dtype).unsqueeze(-1)  # (T, B, 1)

    def forward(self, input: Tensor, hx: Tensor | None = None,
                timespans: float | Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(output, h_n) as ``nn.GRU.forward``, with Δt per step from ``timespans`` (class docstring)."""
        dtype = self.cell().weight_in.dtype
        prepare_input(self._opts, input, hx, dtype=dtype, name="CfC")  # nn.GRU's checks before timespans'
        ts = self._timespans(input, timespans)

        def layer_fn(layer: int, direction: int, x: Tensor, h0: Tensor) -> tuple[Tensor, Tensor]:
            t = ts.flip(0) if isinstance(ts, Tensor) and direction == 1 else ts
            return self.cell(layer, direction).sequence(x, h0, t)

        return rnn_forward(self._opts, input, hx, layer_fn, training=self.training, dtype=dtype, name="CfC")


_GATES = {"RNN": ("h",), "GRU": ("r", "z", "n"), "LSTM": ("i", "f", "g", "o")}


class _LowRankSparseRNNBase(nn.Module):
    """Shared body of the low-rank sparse LSTM/GRU/RNN (abstract: only the three subclasses are built).

    Exactly torch's recurrences (gate order and biases as ``nn.LSTM``/``nn.GRU``/``nn.RNN``) with each gate's
    W_hh block a ``LowRankSparse`` (``hh{sfx}[gate]``; W₀ torch's U(±1/√H) unless ``init`` says otherwise).
    """

    _kind: str
    weight_ih_l0: Tensor  # the first layer's input weights (registered in __init__ with every other layer's)

    def __init__(self, input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, device,
                 dtype, rank, sparsity, init, mask, generator, nonlinearity="tanh") -> None:
        super().__init__()
        opts = RNNOptions(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional)
        self._opts = opts
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout, self.bidirectional = bias, batch_first, opts.dropout, bidirectional
        self.nonlinearity = nonlinearity
        self.rank = _check_rank(rank, hidden_size, f"hidden_size = {hidden_size}")
        self.sparsity = _check_sparsity(sparsity)
        self.init = _check_choice(init, "init", INITS)
        self.mask_kind = _check_choice(mask, "mask", MASKS)
        factory = {"device": device, "dtype": dtype}
        G = len(_GATES[self._kind])
        for layer in range(num_layers):
            for direction in range(opts.num_directions):
                sfx = opts.suffix(layer, direction)
                self.register_parameter(f"weight_ih{sfx}", nn.Parameter(
                    torch.empty(G * hidden_size, opts.layer_input_size(layer), **factory)))
                self.add_module(f"hh{sfx}", nn.ModuleDict({g: LowRankSparse(
                    hidden_size, hidden_size, self.rank, self.sparsity, "uniform", mask, torch.Generator(), **factory)
                    for g in _GATES[self._kind]}))
                for name in ("bias_ih", "bias_hh"):
                    self.register_parameter(f"{name}{sfx}", nn.Parameter(torch.empty(G * hidden_size, **factory))
                                            if bias else None)
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """torch's init: every weight and bias U(±1/√H); each W_hh gate block is then factored and masked."""
        gen = _numpy_rng(generator)
        bound = 1.0 / math.sqrt(self.hidden_size)
        with torch.no_grad():
            for p in self.parameters(recurse=False):
                p.copy_(_uniform(gen, bound, tuple(p.shape)))
        for layer in range(self.num_layers):
            for direction in range(self._opts.num_directions):
                for block in getattr(self, f"hh{self._opts.suffix(layer, direction)}").values():
                    block.reset_parameters(init=self.init, rng=gen)

    def weight_hh(self, layer: int = 0, direction: int = 0) -> Tensor:
        """The assembled W_hh (G·H, H) of one layer and direction, gates in torch's order."""
        blocks = getattr(self, f"hh{self._opts.suffix(layer, direction)}")
        return torch.cat([blocks[g]() for g in _GATES[self._kind]])

    def flatten_parameters(self) -> None:
        """No-op, for code written against ``torch.nn`` RNNs."""

    def extra_repr(self) -> str:
        s = self._opts.extra_repr()
        if self._kind == "RNN" and self.nonlinearity != "tanh":
            s += f", nonlinearity={self.nonlinearity!r}"
        return s + f", rank={self.rank}, sparsity={self.sparsity}"

    def _layer(self, layer: int, direction: int, x: Tensor, h0: Tensor,
               c0: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor | None]:
        sfx = self._opts.suffix(layer, direction)
        gi = F.linear(x, getattr(self, f"weight_ih{sfx}"), getattr(self, f"bias_ih{sfx}"))  # (T, B, G·H)
        W, b_hh = self.weight_hh(layer, direction), getattr(self, f"bias_hh{sfx}")
        H = self.hidden_size
        act = torch.tanh if self.nonlinearity == "tanh" else torch.relu
        h, c, outs = h0, c0, []
        for g_in in gi.unbind(0):  # unbind: indexing gi[t] would cost a full zero tensor per step in backward
            gh = F.linear(h, W, b_hh)
            if self._kind == "RNN":
                h = act(g_in + gh)
            elif self._kind == "GRU":
                i_r, i_z, i_n = g_in.split(H, dim=1)
                h_r, h_z, h_n = gh.split(H, dim=1)
                r, z = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
                n = torch.tanh(i_n + r * h_n)
                h = torch.lerp(n, h, z)  # (1 − z) ⊙ n + z ⊙ h
            else:
                assert c is not None  # an LSTM layer is always given its c0
                g_i, g_f, g_g, g_o = (g_in + gh).split(H, dim=1)
                c = torch.sigmoid(g_f) * c + torch.sigmoid(g_i) * torch.tanh(g_g)
                h = torch.sigmoid(g_o) * torch.tanh(c)
            outs.append(h)
        return torch.stack(outs), h, c

    def _forward(self, input: Tensor, hx: Tensor | None) -> tuple[Tensor, Tensor]:
        return rnn_forward(self._opts, input, hx, lambda lay, d, x, h0: self._layer(lay, d, x, h0)[:2],
                           training=self.training, dtype=self.weight_ih_l0.dtype, name=type(self).__name__)


class LowRankSparseRNN(_LowRankSparseRNNBase):
    """``nn.RNN`` (h' = act(W_ih x + b_ih + W_hh h + b_hh)) with W_hh a ``LowRankSparse``.

    Same positional signature as ``nn.RNN``; keyword-only ``rank`` (None: dense), ``sparsity``, ``init``, ``mask``,
    ``generator``. Shape: as ``nn.RNN``.
    """

    _kind = "RNN"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None, *, rank: int | None = None, sparsity: float = 0.0, init: str = "uniform",
                 mask: str = "bernoulli", generator: torch.Generator | None = None) -> None:
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, device,
                         dtype, rank, sparsity, init, mask, generator, nonlinearity)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(output, h_n) as ``nn.RNN.forward``."""
        return self._forward(input, hx)


class LowRankSparseGRU(_LowRankSparseRNNBase):
    """``nn.GRU`` (gates r, z, n in torch's order and form) with each W_hh gate block a ``LowRankSparse``.

    Same positional signature as ``nn.GRU``; keyword-only ``rank``, ``sparsity``, ``init``, ``mask``,
    ``generator``. Shape: as ``nn.GRU``.
    """

    _kind = "GRU"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, device=None,
                 dtype=None, *, rank: int | None = None, sparsity: float = 0.0, init: str = "uniform",
                 mask: str = "bernoulli", generator: torch.Generator | None = None) -> None:
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, device,
                         dtype, rank, sparsity, init, mask, generator)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(output, h_n) as ``nn.GRU.forward``."""
        return self._forward(input, hx)


class LowRankSparseLSTM(_LowRankSparseRNNBase):
    """``nn.LSTM`` (gates i, f, g, o) with each W_hh gate block a ``LowRankSparse``; ``proj_size`` must be 0.

    Same positional signature as ``nn.LSTM``; keyword-only ``rank``, ``sparsity``, ``init``, ``mask``,
    ``generator``. Shape: as ``nn.LSTM``: hx = (h_0, c_0), each (D·L, B, H); returns output, (h_n, c_n).
    """

    _kind = "LSTM"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, proj_size: int = 0,
                 device=None, dtype=None, *, rank: int | None = None, sparsity: float = 0.0, init: str = "uniform",
                 mask: str = "bernoulli", generator: torch.Generator | None = None) -> None:
        if proj_size != 0:
            raise ValueError(f"proj_size must be 0 (projections are not supported), got {proj_size!r}")
        self.proj_size = 0
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, device,
                         dtype, rank, sparsity, init, mask, generator)

    def forward(self, input: Tensor,
                hx: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """(output, (h_n, c_n)) as ``nn.LSTM.forward``."""
        h0 = None
        dtype = self.weight_ih_l0.dtype
        if hx is None:
            _, c0, batched = prepare_input(self._opts, input, None, dtype=dtype, name="LowRankSparseLSTM")
        else:
            if not isinstance(hx, tuple) or len(hx) != 2:
                raise TypeError(f"LowRankSparseLSTM: hx must be a tuple (h_0, c_0), got {type(hx).__name__}")
            h0 = hx[0]
            _, c0, batched = prepare_input(self._opts, input, hx[1], dtype=dtype, name="LowRankSparseLSTM")
        c_last: list[Tensor] = []
        D = self._opts.num_directions

        def layer_fn(layer: int, direction: int, x: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
            out, h_last, c = self._layer(layer, direction, x, h, c0[layer * D + direction])
            assert c is not None  # an LSTM layer returns its last cell state
            c_last.append(c)
            return out, h_last

        output, h_n = rnn_forward(self._opts, input, h0, layer_fn, training=self.training, dtype=dtype,
                                  name="LowRankSparseLSTM")
        c_n = torch.stack(c_last)
        return output, (h_n, c_n if batched else c_n.squeeze(1))


def recurrent_matrices(module: nn.Module) -> dict[str, Tensor]:
    """Every recurrent matrix of ``module`` by name, detached: 'W' for a ``LowRankSparse``, the head names for
    a ``CfCCell`` ('backbone' with a backbone), 'l{k}[_reverse].{head or gate}' for stacks (``CfC``, the
    LowRankSparse RNNs, and ``torch.nn.RNN``/``GRU``/``LSTM`` whose W_hh is split into its gate blocks).

    Shape: each (H, H) ((units, H) for a backbone block).
    """
    with torch.no_grad():
        if isinstance(module, LowRankSparse):
            return {"W": module().detach().clone()}
        if isinstance(module, CfCCell):
            return {k: block().detach().clone() for k, block in _blocks(module.rec).items()}
        if isinstance(module, CfC):  # each cell's matrices, prefixed by the cell's layer and direction
            opts = module._opts
            return {f"{opts.suffix(layer, d).lstrip('_')}.{k}": W
                    for layer in range(module.num_layers) for d in range(opts.num_directions)
                    for k, W in recurrent_matrices(module.cell(layer, d)).items()}
        if isinstance(module, _LowRankSparseRNNBase):
            return _gate_blocks(module._kind, module.num_layers, module._opts.num_directions, module.hidden_size,
                                module.weight_hh)
        if isinstance(module, (nn.RNN, nn.GRU, nn.LSTM)):
            if getattr(module, "proj_size", 0):
                raise ValueError("recurrent_matrices does not support nn.LSTM with proj_size > 0")
            kind = "LSTM" if isinstance(module, nn.LSTM) else "GRU" if isinstance(module, nn.GRU) else "RNN"

            def weight_hh(layer: int, d: int) -> Tensor:
                return getattr(module, f"weight_hh_l{layer}" + ("_reverse" if d else ""))

            return _gate_blocks(kind, module.num_layers, 2 if module.bidirectional else 1, module.hidden_size,
                                weight_hh)
        raise TypeError(f"module must be a LowRankSparse, CfCCell, CfC, LowRankSparse RNN or torch.nn "
                        f"RNN/GRU/LSTM, got {type(module).__name__}")


def _gate_blocks(kind: str, num_layers: int, D: int, H: int,
                 weight_hh: Callable[[int, int], Tensor]) -> dict[str, Tensor]:
    """W_hh of every layer and direction (``weight_hh(layer, direction)``, (G·H, H)) split into its gates' (H, H)
    blocks in torch's order, by 'l{k}[_reverse].{gate}'."""
    out: dict[str, Tensor] = {}
    for layer in range(num_layers):
        for d in range(D):
            W = weight_hh(layer, d).detach()
            for i, g in enumerate(_GATES[kind]):
                out[f"l{layer}{'_reverse' if d else ''}.{g}"] = W[i * H:(i + 1) * H].clone()
    return out


def spectral_summary(W: Tensor | np.ndarray) -> dict[str, float]:
    """ρ = max|λ(W)| (NaN unless square), ‖W‖₂ = σ_max(W) and the numerical rank, all in float64.

    Shape: W (n_out, n_in).
    """
    a = W.detach().to("cpu", torch.float64).numpy() if isinstance(W, Tensor) else np.asarray(W, dtype=np.float64)
    if a.ndim != 2 or a.size == 0:
        raise ValueError(f"W must be a non-empty 2-D matrix, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError("W has non-finite entries (NaN or inf)")
    sv = np.linalg.svd(a, compute_uv=False)
    rho = float(np.max(np.abs(np.linalg.eigvals(a)))) if a.shape[0] == a.shape[1] else float("nan")
    return {"rho": rho, "norm": float(sv[0]), "rank": int(np.linalg.matrix_rank(a))}
