"""Every hot path of wrec in one table: wrec's time, a peer library's time and the fraction of this machine's limit.

Columns: hot path, size, wrec time, peer (library and version, or why it is absent), peer time, ratio = peer time /
wrec time, fraction of the limit = limit time / wrec time (the limit: a bare GEMM of the same shape or the in-place
NumPy loop of the same update, timed in the same run; "—" where none applies), and the 1-minute load average when
the row finished. Where a benchmark script has a function returning its figures, the row calls it (one timing code
per hot path): the reservoir rows ``benchmarks/reservoir.py``'s ``loop_figures`` (wrec and the NumPy loop timed in
turn), the StableSSM rows ``benchmarks/stablessm_modes.py``'s ``figures``, whose conv and scan rows take wrec's own
step loop as the peer. Every time is the minimum over ``--repeats`` calls after a warm-up (``_timing.best``), all in
this one process except ipc-module, which needs Python ≥ 3.12 and runs in a subprocess (``--ipc-python PATH`` or
$WREC_IPC_PYTHON; none by default; it inherits the thread limit through OPENBLAS_NUM_THREADS). BLAS and torch run on
``--threads`` threads, 1 by default: on a shared machine two threads stall whenever another process holds a core
(measured here at load 6: the RSNN forward 9.6 ms on one thread, 40 ms on two). The machine (cores, BLAS and torch
threads) is printed above the table; notes below it. ``--quick`` runs smaller sizes (under a minute on 2 cores).

    python benchmarks/run.py [--quick] [--repeats R] [--threads N] [--ipc-python PATH] [--only ROW,...]
        [--out FILE.md] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
import scipy.linalg
import torch
from threadpoolctl import threadpool_info, threadpool_limits

import peers
from _timing import best  # benchmarks/ is on sys.path when a script runs


@dataclass(frozen=True)
class Sizes:
    """The problem of every row (one set per ``--quick``/full/smoke)."""

    reservoir: tuple[int, int, int]  # N, B, T
    reservoir_stream: tuple[int, int]  # T, block of run_blocks (same N, B)
    states: tuple[int, int]  # N, T of the ESN states decomposed and profiled
    ipc_delays: dict[int, int]  # {degree: max delay}
    scn: tuple[int, int, int]  # N, B trials, T steps
    scn_learning: int  # learning steps
    sligru: tuple[int, int, int]  # B, T, H
    cfc: tuple[int, int, int]  # B, T, H
    rsnn: int  # T (B = 64, 64 inputs, 100 LIF neurons, 10 outputs: benchmarks/eprop.py)
    stablessm: tuple[int, int, int]  # B, L, H (= d_state)
    repeats: int


SIZES = {
    "full": Sizes((500, 64, 1500), (10_000, 1000), (100, 100_000), {1: 50, 2: 20, 3: 10}, (400, 32, 2000), 10_000,
                  (16, 200, 256), (32, 200, 64), 100, (16, 1000, 64), 3),
    "quick": Sizes((200, 16, 500), (2000, 250), (100, 20_000), {1: 20, 2: 8, 3: 4}, (100, 8, 500), 2000,
                   (8, 50, 64), (8, 50, 32), 25, (8, 200, 32), 2),
    "smoke": Sizes((16, 2, 30), (120, 30), (8, 400), {1: 3, 2: 2, 3: 1}, (8, 2, 30), 40,
                   (2, 4, 8), (2, 4, 8), 3, (2, 16, 4), 1),
}


@dataclass
class Row:
    """One line of the table; times in seconds, None where not measured."""

    hot_path: str
    size: str
    wrec_s: float | None
    peer: str = "—"
    peer_s: float | None = None
    limit: str | None = None
    limit_s: float | None = None
    note: str = ""
    error: str | None = None
    load: float = field(default_factory=lambda: os.getloadavg()[0])

    @property
    def ratio(self) -> float | None:
        """peer time / wrec time."""
        return self.peer_s / self.wrec_s if self.peer_s and self.wrec_s else None

    @property
    def fraction(self) -> float | None:
        """limit time / wrec time: 1 is the machine's limit."""
        return self.limit_s / self.wrec_s if self.limit_s and self.wrec_s else None

    def record(self) -> dict:
        return asdict(self) | {"ratio": self.ratio, "fraction": self.fraction}


@dataclass
class Context:
    sizes: Sizes
    repeats: int
    ipc_python: str | None


def installed(dist: str, label: str) -> str | None:
    """``label version`` when ``dist`` is installed, else None."""
    v = peers.version(dist)
    return f"{label} {v}" if v else None


# --- reservoir simulation ------------------------------------------------------------------------------------------

def reservoir_rows(ctx: Context) -> list[Row]:
    """wrec ``run`` against the in-place NumPy loop (the limit), float32 and float64, and ``run_blocks`` at the long
    T against ``run``: all timed by ``benchmarks/reservoir.py``'s ``loop_figures`` (the two alternately); the
    ReservoirPy peer and the states cross-check here, on the same ESNs (W, w_in, ρ grid and u are loop_figures')."""
    from reservoir import loop_figures, numpy_loop
    from wrec.reservoir import ESN, run
    from wrec.weights import gaussian, input_weights

    N, B, T = ctx.sizes.reservoir
    T_long, block = ctx.sizes.reservoir_stream
    figures = loop_figures(N, B, T, T_long, block, ctx.repeats)
    u = np.random.default_rng(0).uniform(-1.0, 1.0, T)  # loop_figures' input (its generator's first draw)
    W, w_in, rhos = gaussian(N, seed=0, spectral_radius=1.0), input_weights(N, seed=1), np.linspace(0.1, 1.3, B)
    peer = installed("reservoirpy", "ReservoirPy")
    rows = []
    for dt in (np.float32, np.float64):
        name = np.dtype(dt).name
        f = figures[name]
        model = ESN(W, recurrent_scale=rhos, w_in=w_in, dtype=dt)
        diff = float(np.abs(numpy_loop(W, rhos, w_in, dt)(u[:100]) - run(model, u[:100])).max())
        t_peer = None
        note = (f"ρ grid of {B} ESNs sharing one W: one ({B}, {N}) × ({N}, {N}) GEMM per step; wrec and the NumPy "
                f"loop timed alternately by benchmarks/reservoir.py's loop_figures (goal: loop/run ≥ {f['goal']}); "
                f"the NumPy loop's states equal wrec's to max |Δ| {diff:.0e} ({name}, 100 steps).")
        if peer:
            go = peers.reservoirpy_run(rhos[B // 2] * W, w_in, dt)
            t_peer = B * best(lambda f=go: f(u), ctx.repeats, warmup=lambda f=go: f(u[:100]))
            theirs = go(u[:100])
            gap = float(np.abs(theirs - run(model, u[:100])[B // 2]).max())
            note += (f" ReservoirPy runs one reservoir at a time: one Reservoir.run timed, × {B}; its states equal "
                     f"wrec's to max |Δ| {gap:.0e}.")
            if theirs.dtype != dt:
                note += f" Asked for {name}, ReservoirPy returns {theirs.dtype} states."
        rows.append(Row("reservoir simulation (ESN, batched)", f"N = {N}, B = {B}, T = {T}, {name}", f["run_s"],
                        f"{peer} Reservoir" if peer else "ReservoirPy: not installed", t_peer,
                        "in-place NumPy loop", f["numpy_loop_s"], note))
    f = figures["float64"]
    t_stream = B * T_long / f["stream_steps_per_s"]
    rows.append(Row("reservoir streaming (run_blocks)", f"N = {N}, B = {B}, T = {T_long}, blocks of {block}, float64",
                    t_stream, f"wrec run at T = {T}, time × {T_long}/{T}", f["run_s"] * T_long / T,
                    note=f"run_blocks yields the states block by block from one reused buffer (each block summed, "
                    f"as a consumer would), no full record; the peer column is run's time at T = {T} scaled to "
                    f"T = {T_long} (equal steps/s), so the ratio is run_blocks' reservoir-steps/s over run's "
                    f"(goal ≥ 1; float32: {figures['float32']['stream_over_run']:.2f}). benchmarks/reservoir.py's "
                    "loop_figures."))
    return rows


# --- capacity ------------------------------------------------------------------------------------------------------

@cache
def esn_states(N: int, T: int) -> tuple[np.ndarray, np.ndarray]:
    """(states (T, N), input (T,)) of benchmarks/capacity_scale.py's ESN (ρ = 0.9, washout 500)."""
    from capacity_scale import states

    return states(N, T)


def decomposition_row(ctx: Context) -> list[Row]:
    """``decompose`` of ESN states against SciPy's SVD of the same centred, standardised states (benchmarks/
    decompose.py goes further: both routes, nested readouts, the crossover rule)."""
    from wrec.capacity import decompose

    N, T = ctx.sizes.states
    X, _ = esn_states(N, T)
    route = decompose(X).route
    t_wrec = best(lambda: decompose(X), ctx.repeats, warmup=lambda: decompose(X))
    Xc = X - X.mean(axis=0)
    Xc /= np.linalg.norm(Xc, axis=0)
    svd = lambda: scipy.linalg.svd(Xc, full_matrices=False, lapack_driver="gesdd", check_finite=False)  # noqa: E731
    t_peer = best(svd, ctx.repeats, warmup=svd)
    gram = best(lambda: X.T @ X, ctx.repeats, warmup=lambda: X.T @ X)
    return [Row("capacity decomposition (decompose)", f"{T} × {N} states, float64", t_wrec,
                f"SciPy {scipy.__version__} SVD (gesdd)", t_peer, "GEMM XᵀX", gram,
                f"wrec route: {route}; CholeskyQR2 computes two Grams, a triangular solve and a GEMM (on row parts, "
                "one BLAS thread each), the limit is one Gram. The SVD is of the same centred, standardised "
                "states.")]


def projection_row(ctx: Context) -> list[Row]:
    """The projection of every target of degree ≤ 3 onto the state basis (benchmarks/projection.py's ``measure``,
    no threshold) against a bare GEMM of the basis with as many columns."""
    from projection import measure

    N, T = ctx.sizes.states
    K = max(ctx.sizes.ipc_delays.values())
    f = measure(K, N=N, T=T, repeats=ctx.repeats, surrogates=False, states=esn_states(N, T))
    return [Row("capacity projection (targets onto the basis)",
                f"T = {f['T']}, r = {f['r']}, {f['targets']} targets (degrees ≤ 3, delays ≤ {K})",
                f["projection_s"], limit="bare GEMM Uᵀ Z, same shape", limit_s=f["gemm_s"],
                note="targets built in reused buffers, one GEMM per block (wrec.capacity.projection).")]


def ipc_row(ctx: Context) -> list[Row]:
    from wrec.capacity import ipc

    N, T = ctx.sizes.states
    delays = ctx.sizes.ipc_delays
    X, u = esn_states(N, T)
    call = lambda: ipc(X, u, max_delay=delays, basis="legendre", threshold=None)  # noqa: E731
    targets = len(call().table)
    t_wrec = best(call, ctx.repeats, warmup=call)
    t_peer, peer = None, installed("ipc-module", "ipc-module")  # seldom here: it needs Python >= 3.12
    python = peers.ipc_python(ctx.ipc_python)
    if python is None:
        peer = "ipc-module: no Python ≥ 3.12 given (--ipc-python, $WREC_IPC_PYTHON)"
    else:
        from capacity_ipc_module import run_ipc_module

        try:
            found = run_ipc_module(python, X, u, delays, 0, ctx.repeats)
            t_peer, peer = found["t_raw"], f"ipc-module {found['version']} (Python {found['python']})"
        except (SystemExit, Exception) as exc:  # its helper exits with the subprocess's error
            peer = f"ipc-module: failed under {python} ({str(exc).splitlines()[0][:80]})"
    return [Row("IPC, raw capacities (ipc)", f"N = {N}, T = {T}, degrees 1–3, delays {delays}, {targets} targets",
                t_wrec, peer, t_peer, note="Legendre targets, no threshold; ipc-module: UnivariateProfiler"
                "(surrogate_num=0) + calc on the same states (benchmarks/capacity_ipc_module.py), in its subprocess.")]


# --- spike coding networks -----------------------------------------------------------------------------------------

def scn_rows(ctx: Context) -> list[Row]:
    from scn import problem
    from wrec.spiking import simulate
    from wrec.spiking.learning import AutoencoderLearning, learn_autoencoder

    n, b, steps = ctx.sizes.scn
    w, p, c = problem(n, 3, b, steps)
    t_sim = best(lambda: simulate(w, c, p, record=("spikes",)), ctx.repeats,
                 warmup=lambda: simulate(w, c[:, :20], p, record=("spikes",)))
    rule, m = AutoencoderLearning(), ctx.sizes.scn_learning
    learn = lambda: learn_autoencoder(rule, m, seed=0, checkpoints=[0, m])  # noqa: E731
    t_learn = best(learn, ctx.repeats, warmup=learn) / m
    return [Row("spike coding network simulation", f"N = {n}, J = 3, B = {b} trials, T = {steps}", t_sim,
                note="Optimal autoencoder, spikes recorded (benchmarks/scn.py)."),
            Row("spike coding network learning, per step", f"N = {rule.n}, J = {rule.j}, {m} steps", t_learn,
                note="learn_autoencoder, Brendel et al. 2020 Fig. 2 preset; the time is per learning step.")]


# --- torch cells ---------------------------------------------------------------------------------------------------

def sligru_row(ctx: Context) -> list[Row]:
    from cfc import step_time
    from wrec.nn import SLiGRU

    B, T, H = ctx.sizes.sligru
    x = torch.randn(T, B, H, generator=torch.Generator().manual_seed(0))
    t_wrec = step_time(SLiGRU(H, H), x, ctx.repeats)
    peer, t_peer = installed("speechbrain", "SpeechBrain"), None
    if peer:
        t_peer = step_time(peers.SpeechBrainSLiGRU(H, B, T), x, ctx.repeats)
    return [Row("SLi-GRU forward + backward", f"B = {B}, T = {T}, H = {H}, float32, one layer", t_wrec,
                f"{peer} SLiGRU" if peer else "SpeechBrain: not installed", t_peer,
                note="Loss: mean squared output; BatchNorm feed-forward normalisation in both (the same cell: "
                "tests/test_sligru.py checks it against SpeechBrain's to 1e-12).")]


def cfc_row(ctx: Context) -> list[Row]:
    from cfc import NcpsLoop, step_time
    from wrec.nn import CfC

    B, T, H = ctx.sizes.cfc
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(T, B, H, generator=gen)
    t_wrec = step_time(CfC(H, H, generator=gen), x, ctx.repeats)
    peer, t_peer = installed("ncps", "ncps"), None
    if peer:
        t_peer = step_time(NcpsLoop(H, H), x, ctx.repeats)
    return [Row("CfC forward + backward", f"B = {B}, T = {T}, H = {H}, float32, dense", t_wrec,
                f"{peer} CfCCell loop" if peer else "ncps: not installed", t_peer,
                note="ncps's CfCCell (backbone_layers=0) stepped in a Python loop (benchmarks/cfc.py).")]


def rsnn_rows(ctx: Context) -> list[Row]:
    from eprop import gradient, problem
    from wrec.spiking.rules import BPTT, EProp

    T = ctx.sizes.rsnn
    net, x, y = problem(T)
    size = f"B = {x.size(1)}, {x.size(2)} inputs, 100 LIF, T = {T}, float32"
    peer = installed("snntorch", "snnTorch")
    other = peers.SnnTorchRSNN(net) if peer else None

    def forward(model: Callable) -> Callable[[], object]:
        def go() -> object:
            with torch.no_grad():
                return model(x)
        return go

    t_fwd = best(forward(net), ctx.repeats, warmup=forward(net))
    t_bptt = best(lambda: gradient(BPTT(), net, x, y), ctx.repeats, warmup=lambda: gradient(BPTT(), net, x, y))
    t_eprop = best(lambda: gradient(EProp(), net, x, y), ctx.repeats, warmup=lambda: gradient(EProp(), net, x, y))
    p_fwd = p_bptt = None
    note = "RSNN(64, (100,), 10), digits (direct coding), benchmarks/eprop.py's problem."
    if other is not None:
        p_fwd = best(forward(other), ctx.repeats, warmup=forward(other))
        p_bptt = best(lambda: other.gradient(x, y), ctx.repeats, warmup=lambda: other.gradient(x, y))
        diff = float((forward(other)() - forward(net)()[0]).abs().max())
        note += (f" snnTorch: RLeaky + Leaky readout with wrec's weights, same readout potentials to "
                 f"max |Δ| {diff:.1e}; its surrogate is arctan (wrec: triangle).")
    name = f"{peer} RLeaky" if peer else "snnTorch: not installed"
    return [Row("RSNN forward (recurrent LIF)", size, t_fwd, name, p_fwd, note=note),
            Row("RSNN gradient, BPTT", size, t_bptt, name, p_bptt),
            Row("RSNN gradient, online e-prop", size, t_eprop, "— (no e-prop in snnTorch)",
                note="Online e-prop (eligibility traces, memory independent of T).")]


def stablessm_rows(ctx: Context) -> list[Row]:
    """Forward + backward of one block per mode, timed by ``benchmarks/stablessm_modes.py``'s ``figures``; the conv
    and scan rows take the step loop (recurrent mode) as their baseline in the peer columns."""
    from stablessm_modes import figures

    B, L, H = ctx.sizes.stablessm
    f = figures(B, L, H, d_state=H, repeats=ctx.repeats)
    size = f"B = {B}, L = {L}, H = d_state = {H}, float32"
    rows = [Row(f"StableSSM forward + backward, {mode} mode", size, f[f"{mode}_s"], "wrec step loop (recurrent mode)",
                f["recurrent_s"]) for mode in ("conv", "scan")]
    rows.append(Row("StableSSM forward + backward, recurrent mode", size, f["recurrent_s"],
                    "— (the step loop: the baseline above)"))
    rows[0].note = ("The three modes compute the same map (outputs within max |Δ| "
                    f"{f['max_abs_diff']:.0e} of the recurrence); loss: sum of squared outputs; ratio = step loop / "
                    "mode (benchmarks/stablessm_modes.py's figures).")
    return rows


ROWS: dict[str, Callable[[Context], list[Row]]] = {
    "reservoir": reservoir_rows, "decompose": decomposition_row, "projection": projection_row, "ipc": ipc_row,
    "scn": scn_rows, "sligru": sligru_row, "cfc": cfc_row, "rsnn": rsnn_rows, "stablessm": stablessm_rows,
}


# --- the table -----------------------------------------------------------------------------------------------------

def machine() -> dict:
    """Cores, BLAS and torch threads, versions and the load average now."""
    blas = [f"{i['internal_api']} {i['num_threads']} ({Path(i['filepath']).parent.name.removesuffix('.libs')})"
            for i in threadpool_info() if i["user_api"] == "blas"]
    return {"cores": os.cpu_count(), "blas_threads": ", ".join(blas) or "unknown",
            "torch_threads": torch.get_num_threads(), "python": platform.python_version(), "numpy": np.__version__,
            "torch": torch.__version__, "wrec": peers.version("wrec"), "load": list(os.getloadavg()),
            "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS")}


def seconds(t: float | None) -> str:
    if t is None:
        return "—"
    if t >= 1.0:
        return f"{t:.2f} s"
    return f"{t * 1e3:.1f} ms" if t >= 1e-3 else f"{t * 1e6:.1f} µs"


def markdown(rows: list[Row], info: dict, profile: str) -> str:
    """The machine line, the table and its notes, in Markdown."""
    lines = [f"Machine: {info['cores']} cores, BLAS threads {info['blas_threads']}, torch threads "
             f"{info['torch_threads']}; Python {info['python']}, NumPy {info['numpy']}, torch {info['torch']}, "
             f"wrec {info['wrec']}; sizes: {profile}; load average at the start {info['load'][0]:.2f}.", "",
             "| hot path | size | wrec | peer | peer time | ratio (peer/wrec) | fraction of limit | load |",
             "|---|---|---|---|---|---|---|---|"]
    notes = []
    for i, r in enumerate(rows, 1):
        if r.error:
            lines.append(f"| {r.hot_path} | {r.size} | error: {r.error} | — | — | — | — | {r.load:.2f} |")
            continue
        ratio = f"{r.ratio:.3g}" if r.ratio else "—"
        frac = f"{r.fraction:.3g} ({r.limit}, {seconds(r.limit_s)})" if r.fraction else "—"
        lines.append(f"| {r.hot_path} | {r.size} | {seconds(r.wrec_s)} | {r.peer} | {seconds(r.peer_s)} | {ratio} | "
                     f"{frac} | {r.load:.2f} |")
        if r.note and not any(r.note in n for n in notes):  # a shared note once, at its first row
            notes.append(f"{i}. {r.hot_path}: {r.note}")
    return "\n".join([*lines, "", "Notes (by row):", "", *notes, ""])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (under a minute on 2 cores)")
    ap.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)  # tiny sizes, for the test
    ap.add_argument("--repeats", type=int, default=None, help="timed calls per measurement (default: 3, quick 2)")
    ap.add_argument("--threads", type=int, default=1,
                    help="BLAS and torch threads (default 1; 0: as they are; on a shared machine two threads stall "
                         "whenever another process holds a core)")
    ap.add_argument("--ipc-python", default=None, help="a Python >= 3.12 with ipc-module (or $WREC_IPC_PYTHON)")
    ap.add_argument("--only", default=None, help=f"comma-separated rows, of: {', '.join(ROWS)}")
    ap.add_argument("--out", default=None, help="also write the table (Markdown) to this file")
    ap.add_argument("--json", default=None, help="also write the machine and rows as JSON to this file")
    args = ap.parse_args(argv)
    profile = "smoke" if args.smoke else "quick" if args.quick else "full"
    sizes = SIZES[profile]
    keys = args.only.split(",") if args.only else list(ROWS)
    if unknown := set(keys) - set(ROWS):
        ap.error(f"unknown rows {sorted(unknown)}; choose from {', '.join(ROWS)}")
    if args.threads:
        torch.set_num_threads(args.threads)
        os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)  # for ipc-module's subprocess
    ctx = Context(sizes, args.repeats or sizes.repeats, args.ipc_python)
    with threadpool_limits(limits=args.threads) if args.threads else nullcontext():
        info = machine()
        rows: list[Row] = []
        for key in keys:
            try:
                rows += ROWS[key](ctx)
            except Exception as exc:  # one broken row must not lose the others
                rows.append(Row(key, "", None, error=f"{type(exc).__name__}: {exc}"))
            print(f"[{key} done, load {os.getloadavg()[0]:.2f}]", file=sys.stderr, flush=True)
    text = markdown(rows, info, profile)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "sizes": profile, "repeats": ctx.repeats,
                       "rows": [r.record() for r in rows]}, f, indent=1)
    return 1 if any(r.error for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
