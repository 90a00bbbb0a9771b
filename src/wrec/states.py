"""Any wrec network driven by an input sequence → the state matrix that ``wrec.capacity`` measures.

``state_matrix(model, u)`` runs ``model`` over the scalar input u (T,) from its zero (rest) state and returns
X (T − washout, N), float64, with the convention of ``wrec.capacity``: ``X[t]`` is the state right after
``u[washout + t]`` was applied, so X is aligned with ``u[washout:]`` (``memory_capacity(X, u[washout:])``).

What "the state" is, per family:

* ``wrec.reservoir`` records (``ESN``, ``LeakyESN``, ``Linear``, ``Rate``): what ``reservoir.run`` records.
* spike coding networks (``spiking.SCN``): the filtered spike trains r (the decoder's variable, x̂ = D r); u enters
  through F as the signal x_t = u_t w_in the network codes, as the current c_t = ẋ + λx of ``input_current``
  (``drive="signal"``), or as the current itself, c_t = u_t w_in (``drive="current"``).
* recurrent (A)LIF networks (``spiking.RSNN``): the spike trains filtered by the readout's decay κ,
  r_t = κ r_{t−1} + z_t (so the readout is y_t = W_out r_t + const), or the membrane potentials v_t.
* torch modules with ``torch.nn.GRU``'s contract (``nn.RNN``/``GRU``/``LSTM``, ``wrec.nn.LiGRU``, ``SLiGRU``, ``CfC``,
  ``LowRankSparseRNN``/``GRU``/``LSTM``): the hidden sequence h_t of the last layer, or of every layer.
* ``wrec.nn.StableSSM`` / ``LinearDiagonalSSM``: the SSM's hidden state h_t (not the layer's output); a complex mode
  gives two columns, Re h and Im h.
* ReservoirPy nodes and models (``reservoirpy.nodes.Reservoir``, ``res1 >> res2``, ...): what their ``run`` returns
  (a model's output nodes side by side), run on a copy reset to its zero state; a model whose output is a trained
  readout is refused (give the reservoir, or the model without its readout).
* any other callable ``u -> X``: its result, checked.

Torch models run on a float64 copy in eval mode under ``torch.no_grad()`` (the user's module is never changed), in
chunks of ``chunk`` steps whose last state starts the next chunk, so that the memory a forward pass needs stays
bounded whatever T.
"""

from __future__ import annotations

import copy
import math
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from wrec import _checks
from wrec._checks import Seed

if TYPE_CHECKING:
    import torch
    from torch import Tensor

    from wrec.nn.stablessm import LinearDiagonalSSM, StableSSM
    from wrec.spiking.rsnn import RSNN
    from wrec.spiking.scn import SCN

__all__ = ["state_matrix"]

LAYERS = ("last", "all")
OBSERVE = ("rate", "potential", "both")
DRIVES = ("signal", "current")

_BLOWN = ("the network blew up: its state became non-finite by step {t} of {T}; lower the recurrent gain / spectral "
          "radius or the input scale")


def state_matrix(
    model: object,
    u: object,
    *,
    washout: int = 0,
    w_in: object = None,
    seed: Seed = None,
    layers: str | None = None,
    observe: str | None = None,
    drive: str | None = None,
    chunk: int = 1024,
) -> np.ndarray:
    """Drive ``model`` with the input sequence ``u`` and return its states after the washout.

    ``X[t]`` is the state right after ``u[washout + t]`` (``wrec.capacity``'s alignment): pass ``u[washout:]`` with
    X to ``memory_capacity``, ``ipc`` or ``capacities``. The network starts from its zero (rest) state.

    Args:
        model: a ``reservoir.ESN`` / ``LeakyESN`` / ``Linear`` / ``Rate`` (one reservoir, not a batch), a
            ``spiking.SCN``, a ``spiking.RSNN``, a torch module with ``torch.nn.GRU``'s contract, a
            ``nn.StableSSM`` or ``nn.LinearDiagonalSSM``, a ReservoirPy node or model (states from its ``run``),
            or a callable ``u -> X`` returning (T, N) states.
        u: the input, shape (T,).
        washout: initial steps to discard, 0 <= washout < T.
        w_in: (K,) weights that map u onto a model with K > 1 input channels (input_t = u_t · w_in); None for one
            channel (or a ReservoirPy node whose input size is not yet set). Not for wrec reservoirs (they carry
            their own w_in) or callables.
        seed: the noise of a spike coding network (``SCNParams.sigma_v``, ``sigma_t``); the other models have none.
        layers: layered torch models: ``"last"`` (default) or ``"all"`` (every layer's states side by side, bottom
            layer first). A GRU-contract module then runs one step per call (it returns only the last layer's
            sequence), which is slower.
        observe: spiking networks: ``"rate"`` (default; the filtered spike trains), ``"potential"`` (the membrane
            potentials) or ``"both"`` (rates then potentials, per layer).
        drive: spike coding networks: ``"signal"`` (default; u is the signal the network codes) or ``"current"``
            (u is the input current c).
        chunk: time steps per forward call of a torch model (bounds its memory; the results do not depend on it).

    Returns:
        X, float64, shape (T − washout, N).

    Raises:
        TypeError: an unknown model type or a wrong argument type.
        ValueError: a wrong shape or value (u not (T,), washout >= T, w_in missing or of the wrong size, an option
            the model does not take, a bidirectional module), non-finite input, or a network that blew up (its
            state became non-finite; a spike storm of a spike coding network).

    Examples:
        >>> import numpy as np
        >>> from wrec import capacity, reservoir, weights
        >>> from wrec.states import state_matrix
        >>> u = np.random.default_rng(0).uniform(-1, 1, 2_000)
        >>> esn = reservoir.ESN(weights.gaussian(50, spectral_radius=0.9, seed=1), input_scale=0.1, seed=2)
        >>> X = state_matrix(esn, u, washout=200)
        >>> X.shape
        (1800, 50)
        >>> mc = capacity.memory_capacity(X, u[200:], max_delay=60)

        A torch network, e.g. ``torch.nn.GRU(1, 32)``, or a callable (here a delay line of three steps):

        >>> X = state_matrix(lambda u: np.stack([u, np.r_[0, u[:-1]], np.r_[0, 0, u[:-2]]], 1), u)
        >>> bool(X[5, 2] == u[3])
        True
    """
    u_arr = _checks.array(u, "u")
    if u_arr.ndim != 1:
        raise ValueError(f"u must be one input sequence of shape (T,), got shape {u_arr.shape}; map it onto a model "
                         "with several input channels with w_in")
    T = u_arr.shape[0]
    washout = _checks.integer(washout, "washout", low=0)
    if washout >= T:
        raise ValueError(f"washout must be smaller than the input length T = {T}, got {washout}")
    chunk = _checks.integer(chunk, "chunk", low=1)
    rng = _checks.rng(seed)
    given = {"layers": layers, "observe": observe, "drive": drive}
    _check_choices(given)
    family = _family(model)
    _check_applies(family, model, given, w_in)

    if family == "reservoir":
        X = _reservoir(model, u_arr, washout)
    elif family == "scn":
        X = _scn(cast("SCN", model), u_arr, washout, w_in, rng, observe or "rate", drive or "signal")
    elif family == "reservoirpy":
        X = _reservoirpy(model, u_arr, washout, w_in)
    elif family == "callable":
        X = _callable(cast(Callable[[np.ndarray], object], model), u_arr, washout)
    else:
        X = _torch(family, model, u_arr, washout, w_in, layers or "last", observe or "rate", chunk)
    return np.ascontiguousarray(X, dtype=np.float64)


# the options each family takes, and how an error message names the family
_TAKES: dict[str, tuple[str, ...]] = {
    "reservoir": (), "scn": ("observe", "drive"), "rsnn": ("layers", "observe"), "gru": ("layers",),
    "ssm": ("layers",), "linear-ssm": ("layers",), "reservoirpy": (), "callable": ()}
_KIND = {"reservoir": "a reservoir", "scn": "a spike coding network", "rsnn": "an RSNN",
         "gru": "a torch.nn.GRU-like module", "ssm": "a StableSSM", "linear-ssm": "a LinearDiagonalSSM",
         "reservoirpy": "a ReservoirPy node or model", "callable": "a callable"}


def _check_choices(given: dict[str, str | None]) -> None:
    """Each option given (layers, observe, drive) is None or one of its allowed values."""
    allowed = {"layers": LAYERS, "observe": OBSERVE, "drive": DRIVES}
    for name, value in given.items():
        if value is not None and value not in allowed[name]:
            raise ValueError(f"{name} must be one of {allowed[name]} or None, got {value!r}")


def _check_applies(family: str, model: object, given: dict[str, str | None], w_in: object) -> None:
    """The options given (not None) and w_in are ones the model's family takes."""
    takes, kind = _TAKES[family], _KIND[family]
    for name, value in given.items():
        if value is not None and name not in takes:
            raise ValueError(f"{name} does not apply to {kind} ({type(model).__name__}); it takes "
                             f"{', '.join(takes) if takes else 'none of layers, observe, drive'}")
    if family in ("reservoir", "callable") and w_in is not None:
        raise ValueError(f"w_in does not apply to {kind} ({type(model).__name__}): "
                         + ("it carries its own input weights" if family == "reservoir" else "it receives u itself"))


# ---------------------------------------------------------------------------------------------------------------
# dispatch without importing: a model of a family whose module was never imported cannot be of that family


def _is(model: object, module: str, name: str) -> bool:
    mod = sys.modules.get(module)
    return mod is not None and isinstance(model, getattr(mod, name))


def _family(model: object) -> str:
    res = sys.modules.get("wrec.reservoir.models")
    if res is not None and type(model) in res.STEPS:
        return "reservoir"
    if _is(model, "wrec.spiking.scn", "SCN"):
        return "scn"
    if _is(model, "wrec.spiking.scn", "SCNWeights"):
        raise TypeError("model is an SCNWeights: give the network with its simulation constants, "
                        "wrec.spiking.SCN(weights, SCNParams(...))")
    if _is(model, "torch.nn", "Module"):
        return _torch_family(model)
    if _is(model, "reservoirpy.node", "Node") or _is(model, "reservoirpy.model", "Model"):
        return "reservoirpy"  # before callable: a ReservoirPy node's __call__ is one step
    if callable(model):
        return "callable"
    raise TypeError("model must be a wrec.reservoir ESN/LeakyESN/Linear/Rate, a wrec.spiking SCN or RSNN, a torch "
                    "module with torch.nn.GRU's contract, a wrec.nn StableSSM/LinearDiagonalSSM, a ReservoirPy node "
                    f"or model, or a callable u -> X; got {type(model).__name__}")


def _torch_family(model: object) -> str:
    if _is(model, "wrec.nn.stablessm", "StableSSM"):
        return "ssm"
    if _is(model, "wrec.nn.stablessm", "LinearDiagonalSSM"):
        return "linear-ssm"
    if _is(model, "wrec.spiking.rsnn", "RSNN"):
        return "rsnn"
    if all(hasattr(model, a) for a in ("input_size", "hidden_size", "num_layers")):
        return "gru"
    raise TypeError(f"model is a torch module ({type(model).__name__}) without torch.nn.GRU's contract "
                    "(input_size, hidden_size, num_layers; forward(input, hx) -> (output, h_n)); wrap it in a "
                    "callable u -> X that returns its (T, N) states")


def _input_weights(w_in: object, k: int, what: str) -> np.ndarray:
    """(K,) weights mapping the scalar u onto K input channels; None means K = 1."""
    if w_in is None:
        if k != 1:
            raise ValueError(f"{what} has K = {k} input channels: pass w_in of shape ({k},) to map u onto them")
        return np.ones(1)
    w = _checks.array(w_in, "w_in", ndim=1)
    if w.shape != (k,):
        raise ValueError(f"w_in must have shape ({k},) for {what} with K = {k} input channels, got {w.shape}")
    return w


# ---------------------------------------------------------------------------------------------------------------
# NumPy families


def _reservoir(model: Any, u: np.ndarray, washout: int) -> np.ndarray:
    from wrec.reservoir import run

    if model.batch_size is not None:
        raise ValueError(f"model describes a batch of {model.batch_size} reservoirs; state_matrix takes one network "
                         "(use wrec.reservoir.run for a batch)")
    return run(model, u, washout=washout)


def _scn(model: SCN, u: np.ndarray, washout: int, w_in: object, rng: np.random.Generator, observe: str,
         drive: str) -> np.ndarray:
    from wrec.spiking.scn import input_current, simulate

    w, p = model.weights, model.constants
    x = u[:, None] * _input_weights(w_in, w.j, "the spike coding network (J)")  # (T, J)
    if drive == "signal":
        # c_t = (x_t − (1 − λdt) x_{t−1})/dt from x_{−1} = 0: the Euler step x ← (1 − λdt) x + dt c then lands on
        # x_t, so the state after step t codes u_t
        c = input_current(np.vstack([np.zeros((1, w.j)), x]), p.leak, p.dt)
    else:
        c = x
    record = {"rate": ("r",), "potential": ("V",), "both": ("r", "V")}[observe]
    try:
        out = simulate(w, c, p, seed=rng, record=record)
    except RuntimeError as exc:  # the spike-storm guard: the spiking analogue of a blow-up
        raise ValueError(f"the spike coding network blew up: {exc}") from exc
    parts = [a[washout:] for a in (out.r, out.V) if a is not None]
    return parts[0] if len(parts) == 1 else np.hstack(parts)


def _callable(model: Callable[[np.ndarray], object], u: np.ndarray, washout: int) -> np.ndarray:
    return _checked(model(u.copy()), u.shape[0], "model(u)")[washout:]


def _checked(result: object, T: int, what: str) -> np.ndarray:
    """``result`` as (T, N) finite states; ``what`` names where they came from."""
    X = _checks.array(result, what, ndim=(1, 2), finite=False)
    X = X[:, None] if X.ndim == 1 else X
    if X.shape[0] != T or X.shape[1] == 0:
        raise ValueError(f"{what} must return states of shape (T, N) = ({T}, N) aligned with u, got {X.shape}")
    t = _checks.first_nonfinite_row(X)
    if t is not None:
        raise ValueError(_BLOWN.format(t=t, T=T) + f" ({what} returned NaN or inf)")
    return X


def _reservoirpy(model: Any, u: np.ndarray, washout: int, w_in: object) -> np.ndarray:
    """A ReservoirPy node or model: ``run`` on a deep copy reset to its zero state (the user's object is unchanged;
    an uninitialised one draws its weights in the copy from its own generator, as its first ``run`` would). Its
    ``run`` returns the state right after each input row, wrec's alignment."""
    name = type(model).__name__
    net = copy.deepcopy(model)
    if getattr(net, "initialized", False):
        net.reset()
    outputs = getattr(net, "outputs", None)  # a Model's output nodes
    if outputs is not None:
        trained = [type(n).__name__ for n in outputs if _is(n, "reservoirpy.node", "TrainableNode")]
        if trained:
            raise ValueError(f"model ({name}) outputs a trained readout ({', '.join(trained)}), not states: give "
                             "the reservoir node, or the model without its readout")
    inputs = [net] if outputs is None else net.inputs
    dims = {int(n.input_dim) for n in inputs if n.input_dim is not None}
    # an input size not yet set is w_in's
    k = dims.pop() if len(dims) == 1 else (1 if w_in is None else int(np.size(cast(Any, w_in))))
    x = u[:, None] * _input_weights(w_in, k, f"model ({name})")  # (T, K)
    with np.errstate(over="ignore", invalid="ignore"):  # a blow-up is reported below, by step
        result = net.run(x)
    if isinstance(result, dict):  # several output nodes: side by side, in the model's order
        result = np.hstack([result[n.name] for n in net.outputs])
    return _checked(result, u.shape[0], f"model ({name}).run")[washout:]


# ---------------------------------------------------------------------------------------------------------------
# torch families


class _Rows:
    """The output matrix, filled chunk by chunk from step ``start``; washout rows are never copied to the host."""

    def __init__(self, T: int, washout: int) -> None:
        self.T, self.washout = T, washout
        self.out: np.ndarray | None = None

    def put(self, start: int, block: Tensor) -> None:
        """``block`` (L, N): the states after steps start .. start + L − 1."""
        import torch

        # one pass, no boolean copy: a sum is finite when every entry is (or, rarely, falsely not: then look closer)
        if not bool(torch.isfinite(block.sum())) and not bool(torch.isfinite(block).all()):
            bad = torch.nonzero(~torch.isfinite(block).all(1))
            raise ValueError(_BLOWN.format(t=start + int(bad[0, 0]), T=self.T))
        lo = max(self.washout - start, 0)
        if lo >= block.shape[0]:
            return
        if self.out is None:
            self.out = np.empty((self.T - self.washout, block.shape[1]))
        self.out[start + lo - self.washout:start + block.shape[0] - self.washout] = block[lo:].cpu().numpy()

    def result(self) -> np.ndarray:
        assert self.out is not None  # the last chunk always lies after the washout
        return self.out


def _scan_in_place(lam: Tensor, b: Tensor, h0: Tensor) -> Tensor:
    """h_t = λ ⊙ h_{t−1} + b_t for t = 0..L−1 from h_{−1} = h0, written over ``b`` (returned).

    Two levels of about √L sequential steps each, every step one fused in-place multiply-add over a whole slice:
    first the scan inside every block of K ≈ √L steps at once (from a zero state), then the states before each
    block, s_j = λ^K ⊙ s_{j−1} + (block j−1's last local value), and h = local + λ^{k+1} ⊙ s_j; steps past the
    last whole block run one by one.

    Shape: b (L, *S); lam and h0 broadcast to S. Real or complex (lam, h0 and b of one dtype).
    """
    import torch

    L, S = b.shape[0], b.shape[1:]
    lam = lam.expand(S)
    K = 1 << max(0, round(math.log2(math.sqrt(L)))) if L > 1 else 1
    nb = L // K
    head = b[:nb * K].view(nb, K, *S)
    for k in range(1, K):
        head[:, k].addcmul_(head[:, k - 1], lam)
    powers = torch.cumprod(lam.expand(K, *S), 0)  # λ^{k+1}, (K, *S)
    before = torch.empty_like(head[:, 0])
    carry = h0.expand(S)
    for j in range(nb):
        before[j] = carry
        carry = torch.addcmul(head[j, -1], powers[-1], carry)
    head.addcmul_(powers.unsqueeze(0), before.unsqueeze(1))
    for t in range(nb * K, L):
        b[t].addcmul_(b[t - 1] if t else h0.expand(S), lam)
    return b


def _torch(family: str, model: Any, u: np.ndarray, washout: int, w_in: object, layers: str, observe: str,
           chunk: int) -> np.ndarray:
    import torch

    params = list(model.parameters())
    device = params[0].device if params else torch.device("cpu")
    if getattr(model, "bidirectional", False):
        raise ValueError(f"model ({type(model).__name__}) is bidirectional: its reverse direction reads the future, "
                         "so its state at t is not a function of u up to t; use a unidirectional network")
    with torch.no_grad():
        # a float64 module in eval mode is run as it is (nothing here changes it); any other is copied first
        ready = all(t.dtype == torch.float64 for t in (*params, *model.buffers()) if t.is_floating_point()) \
            and not any(m.training for m in model.modules())
        net = model if ready else copy.deepcopy(model).to(torch.float64).eval()
        x = torch.as_tensor(u, dtype=torch.float64, device=device)[:, None] * torch.as_tensor(
            _input_weights(w_in, int(net.input_size), f"model ({type(model).__name__})"), device=device)  # (T, K)
        rows = _Rows(u.shape[0], washout)
        runs: dict[str, Callable[..., None]] = {"gru": _gru, "rsnn": _rsnn, "ssm": _stablessm,
                                                "linear-ssm": _linear_ssm}
        run = runs[family]
        run(net, x, rows, chunk=chunk, layers=layers, observe=observe)
    return rows.result()


def _chunks(T: int, chunk: int) -> range:
    return range(0, T, chunk)


def _gru(net: torch.nn.Module, x: Tensor, rows: _Rows, *, chunk: int, layers: str, observe: str) -> None:
    """Modules with nn.GRU's contract: forward(input, hx) -> (output, h_n), h_n carried to the next call (for an
    LSTM the pair (h_n, c_n)). ``layers="all"``: one step per call, recording h_n of every layer."""
    import torch

    batch_first = bool(getattr(net, "batch_first", False))
    T = x.shape[0]
    hx: Any = None

    def call(xc: Tensor) -> tuple[Tensor, Any]:
        result = net(xc.unsqueeze(0 if batch_first else 1), hx)  # (1, L, K) or (L, 1, K)
        if not isinstance(result, tuple) or len(result) != 2:
            raise TypeError(f"model ({type(net).__name__}).forward(input, hx) must return (output, h_n) as "
                            f"torch.nn.GRU does, got {type(result).__name__}")
        out, h = result
        return (out[0] if batch_first else out[:, 0]), h  # (L, H)

    if layers == "last":
        for start in _chunks(T, chunk):
            out, hx = call(x[start:start + chunk])
            rows.put(start, out)
        return
    for start in _chunks(T, chunk):
        block = []
        for t in range(start, min(start + chunk, T)):
            _, hx = call(x[t:t + 1])
            h = hx[0] if isinstance(hx, tuple) else hx  # (num_layers, 1, H); an LSTM's h, not its cell state c
            block.append(h.reshape(-1))
        rows.put(start, torch.stack(block))


def _rsnn(net: RSNN, x: Tensor, rows: _Rows, *, chunk: int, layers: str, observe: str) -> None:
    """lif_step per layer and step (the loop of RSNN.hidden), the states of every layer carried across chunks; the
    spike trains filtered by the readout's κ."""
    import torch

    from wrec.spiking.rsnn import LIFState, lif_step

    p = net.params
    kappa = torch.tensor(p.kappa, dtype=x.dtype, device=x.device)
    weights = [net.layer_weights(layer) for layer in range(net.num_layers)]
    states = [LIFState.zeros(1, h, dtype=x.dtype, device=x.device) for h in net.hidden_sizes]
    filtered = [torch.zeros(1, h, dtype=x.dtype, device=x.device) for h in net.hidden_sizes]
    keep = range(net.num_layers) if layers == "all" else [net.num_layers - 1]
    T = x.shape[0]
    for start in _chunks(T, chunk):
        inp = x[start:start + chunk].unsqueeze(1)  # (L, 1, K)
        parts = []
        for layer, (w, w_rec) in enumerate(weights):
            state, z, v = states[layer], [], []
            potentials = layer in keep and observe != "rate"
            for x_t in inp:
                state = lif_step(p, state, x_t, w, w_rec)
                z.append(state.z)
                if potentials:
                    v.append(state.v)
            states[layer] = state
            inp = torch.stack(z)  # (L, 1, H): the next layer's input
            if layer in keep:
                if observe in ("rate", "both"):
                    r = _scan_in_place(kappa, inp[:, 0].clone(), filtered[layer][0])
                    filtered[layer] = r[-1:]
                    parts.append(r)
                if observe in ("potential", "both"):
                    parts.append(torch.stack(v)[:, 0])
        rows.put(start, parts[0] if len(parts) == 1 else torch.cat(parts, 1))


def _stablessm(net: StableSSM, x: Tensor, rows: _Rows, *, chunk: int, layers: str, observe: str) -> None:
    """Each block: v = encoder(x) (LayerNorm'd when pre-norm), h_t = λ ⊙ h_{t−1} + B̄ v_t (the ZOH recurrence of
    ``StableSSM.step``), then the block's output from h as its forward computes it, the next layer's input."""
    import torch

    from wrec.rnn import RNNOptions

    blocks: list[Any] = [net.layers[RNNOptions.suffix(layer, 0).lstrip("_")] for layer in range(net.num_layers)]
    h0: list[Tensor | None] = [None] * len(blocks)
    keep = range(len(blocks)) if layers == "all" else [len(blocks) - 1]
    for start in _chunks(x.shape[0], chunk):
        inp = x[start:start + chunk]  # (L, K)
        parts = []
        for layer, block in enumerate(blocks):
            kernel = block.kernel
            z = block.encoder(inp)  # (L, H)
            v = block.norm(z) if block.prenorm else z
            lam, Bbar = kernel.discretize()  # (H, n) complex
            start_state = h0[layer]
            h = _scan_in_place(lam, Bbar * v.unsqueeze(-1).to(Bbar.dtype),
                             torch.zeros_like(lam) if start_state is None else start_state)  # (L, H, n)
            h0[layer] = h[-1]
            if layer in keep:
                parts.append((h.real if kernel.real else torch.view_as_real(h)).reshape(h.shape[0], -1))
            if layer < len(blocks) - 1:
                s = kernel.factor * (kernel.complex_C() * h).sum(-1).real + block.D * v
                inp = block.mix(z, s)
        rows.put(start, parts[0] if len(parts) == 1 else torch.cat(parts, 1))


def _linear_ssm(net: LinearDiagonalSSM, x: Tensor, rows: _Rows, *, chunk: int, layers: str, observe: str) -> None:
    """h_t = λ ⊙ h_{t−1} + U x_t (real diagonal)."""
    lam, U = net.eigenvalues(), net.U
    h0 = lam.new_zeros(lam.shape)
    for start in _chunks(x.shape[0], chunk):
        h = _scan_in_place(lam, x[start:start + chunk] @ U.T, h0)  # (L, m)
        h0 = h[-1]
        rows.put(start, h)
