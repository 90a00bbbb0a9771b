"""Targets built in place and projected by one GEMM per block: G = ZᵀA and S = (Z∘Z)ᵀB.

An IPC target z_t = Π_f P_{d_f}(u_{t−k_f}) (Dambre et al., Sci. Rep. 2, 514, 2012) reads each factor from one
row of the basis shifted by its delay: with the basis (R, T_b) flattened, factor f of target j on the rows
t = 0..rows−1 is the contiguous slice flat[o_jf + t], o_jf = d_f·T_b + offset − k_f. The targets are sorted by
their offsets and cut into *runs*: consecutive targets whose every offset steps by a constant s_f. A run of L
targets is then one strided 2-D view of the flat basis per factor (row stride s_f; a factor the run shares has
s_f = 0), so it is built by one broadcast multiply per varying factor, written with ``out=`` into a reused
(targets × rows) buffer; the shared factors (e.g. P_1(u_{t−k_1}) P_1(u_{t−k_2}) of every degree-3 target with
those first delays) are multiplied once per run. Each buffer Y is projected by one GEMM Y·A[t0:t1], squared in
place and projected by one GEMV per column of B[t0:t1]: no per-block allocation, no gather copies.

The rows are cut into chunks shared round-robin among worker threads (as many as BLAS may use), each on one BLAS
thread with its own buffers and sums, added in a fixed order at the end (the result does not depend on timing):
ufuncs and GEMMs release the GIL, and no worker waits for another before the end, where two OpenBLAS threads
on one GEMM meet once per panel and, on loaded cores, wait for a descheduled thread at every meeting. Only the
main thread spreads the work so: called from another thread (a Dask task, the caller's own pool) it runs on that
thread and leaves the BLAS thread count alone — OpenBLAS's thread count set from worker threads could not be
raised again afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from wrec._threads import one_blas_thread, spare_threads

CHUNK_ROWS = 4096  # rows per chunk: one GEMM's inner dimension
BLOCK_ELEMENTS = 1 << 20  # buffer elements per worker (8 MiB): targets per GEMM = BLOCK_ELEMENTS // CHUNK_ROWS


@dataclass(frozen=True)
class Run:
    """L consecutive sorted targets: factor f of target i < L starts at flat offset ``first[f] + i·step[f]``."""

    position: int  # in the sorted order
    length: int
    shared: tuple[int, ...]  # offsets of the factors with step 0 (all, for one target or repeats of one)
    varying: tuple[tuple[int, int], ...]  # (first offset, step) of the others


@dataclass(frozen=True)
class Plan:
    """Targets in sorted order (``order[i]`` is the caller's index of sorted target i), cut into runs and into
    blocks of at most ``block`` targets (``blocks[b]``: (first position, size, runs), runs split at block edges)."""

    order: np.ndarray
    blocks: tuple[tuple[int, int, tuple[Run, ...]], ...]
    n_targets: int


def _split(F: np.ndarray) -> list[tuple[int, int]]:
    """(first, length) of the runs of F (m, n), sorted: greedy, each run as long as its offsets step evenly; a
    two-target run that would take the head of a longer one is left a single target."""
    m = F.shape[0]
    if m < 2:
        return [(0, m)] if m else []
    D = np.diff(F, axis=0)
    ends = np.append(np.flatnonzero(np.any(D[1:] != D[:-1], axis=1)) + 1, m - 1).tolist()  # step segments' ends
    runs, p, s = [], 0, 0
    while p < m:
        if p == m - 1:
            runs.append((p, 1))
            break
        while ends[s] <= p:
            s += 1
        b = ends[s]  # D[p:b] share one step: targets p..b
        if b == p + 1 and s + 1 < len(ends) and ends[s + 1] > b + 1:
            runs.append((p, 1))  # p + 1 heads a longer run
            p += 1
            continue
        runs.append((p, b - p + 1))
        p = b + 1
    return runs


def plan(offsets: Sequence[np.ndarray], block: int) -> Plan:
    """The plan for targets given as groups of flat offsets (m_g, n_g) (groups may differ in n_g), in the
    caller's order: group after group."""
    order, runs, base, pos = [], [], 0, 0
    for F in offsets:
        F = np.asarray(F, dtype=np.int64).reshape(F.shape[0], -1)
        idx = np.lexsort(F.T[::-1]) if F.shape[0] else np.zeros(0, np.int64)  # by the first factor, then the next…
        Fs = F[idx]
        order.append(base + idx)
        for first, length in _split(Fs):
            step = Fs[first + 1] - Fs[first] if length > 1 else np.zeros(F.shape[1], np.int64)
            runs.append((pos + first, length, Fs[first], step))
        base += F.shape[0]
        pos += F.shape[0]
    blocks = []
    for b0 in range(0, pos, block):
        b1 = min(b0 + block, pos)
        inside = []
        for first, length, o, step in runs:
            lo, hi = max(first, b0), min(first + length, b1)
            if lo >= hi:
                continue
            o = o + (lo - first) * step
            length = hi - lo
            if length == 1:
                inside.append(Run(lo - b0, 1, tuple(o.tolist()), ()))
            else:
                inside.append(Run(lo - b0, length, tuple(o[step == 0].tolist()),
                                  tuple(zip(o[step != 0].tolist(), step[step != 0].tolist(), strict=True))))
        blocks.append((b0, b1 - b0, tuple(inside)))
    return Plan(order=np.concatenate(order) if order else np.zeros(0, np.int64), blocks=tuple(blocks),
                n_targets=pos)


def _view(W: np.ndarray, first: int, step: int, length: int) -> np.ndarray:
    """Rows first, first + step, … (length of them) of the window view W: a strided view, no copy."""
    stop = first + length * step
    return W[first : (stop if stop >= 0 else None) : step]


def _product(W: np.ndarray, offsets: tuple[int, ...], out: np.ndarray) -> np.ndarray:
    """out = Π_o W[o] (one row per offset, each the same length as out)."""
    if len(offsets) == 1:
        np.copyto(out, W[offsets[0]])
        return out
    np.multiply(W[offsets[0]], W[offsets[1]], out=out)
    for o in offsets[2:]:
        out *= W[o]
    return out


def _build(W: np.ndarray, runs: tuple[Run, ...], Y: np.ndarray, scratch: np.ndarray) -> None:
    """Y[i] = the sorted target i of the block on this chunk's rows (W[o] = flat[o + t0 : o + t0 + rows])."""
    for run in runs:
        out = Y[run.position : run.position + run.length]
        shared = run.shared
        if not run.varying:  # one target (or copies of one): its factors multiplied into its row
            out[1:] = _product(W, shared, out[0])
            continue
        views = [_view(W, o, s, run.length) for o, s in run.varying]
        if shared:  # the shared factors once, then broadcast over the run's rows
            np.multiply(views[0], W[shared[0]] if len(shared) == 1 else _product(W, shared, scratch), out=out)
        elif len(views) == 1:
            np.copyto(out, views[0])
        else:
            np.multiply(views[0], views[1], out=out)
            views = views[1:]
        for v in views[1:]:
            out *= v


def _work(flat: np.ndarray, p: Plan, A: Any, B: Any, chunks: list[tuple[int, int]], width: int
          ) -> tuple[np.ndarray, np.ndarray]:
    """One worker: the sums ZᵀA and (Z∘Z)ᵀB (sorted target order) over its chunks of rows."""
    G = np.zeros((p.n_targets, A.shape[1]))
    S = np.zeros((p.n_targets, B.shape[1]))
    block = max(size for _, size, _ in p.blocks)
    buffer = np.empty(block * width)
    scratch = np.empty(width)
    g, s = np.empty((block, A.shape[1])), np.empty((B.shape[1], block))
    for t0, t1 in chunks:
        c = t1 - t0
        W = sliding_window_view(flat[t0:], c)  # W[o] = flat[o + t0 : o + t1]
        At = np.asarray(A[t0:t1], dtype=np.float64)
        Bt = np.array(np.asarray(B[t0:t1], dtype=np.float64).T, order="C")  # (q, c): one GEMV per column of B
        for b0, size, runs in p.blocks:
            Y = buffer[: size * c].reshape(size, c)  # contiguous: one GEMM
            _build(W, runs, Y, scratch[:c])
            np.matmul(Y, At, out=g[:size])
            G[b0 : b0 + size] += g[:size]
            np.multiply(Y, Y, out=Y)
            for k in range(Bt.shape[0]):  # q GEMVs: twice as fast as one GEMM q = 2 columns wide
                np.matmul(Y, Bt[k], out=s[k, :size])
            S[b0 : b0 + size] += s[:, :size].T
    return G, S


def project_offsets(flat: np.ndarray, offsets: Sequence[np.ndarray], rows: int, A: Any, B: Any, *,
                    workers: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """ZᵀA (m, p) and (Z∘Z)ᵀB (m, q) for the targets z_j,t = Π_f flat[o_jf + t], t = 0..rows−1, given as groups
    of offsets (m_g, n_g) (concatenated in order).

    ``flat`` is a contiguous float64 vector with every o_jf + rows ≤ flat.size; A (rows, p) and B (rows, q) are
    NumPy arrays or row sources read as ``A[t0:t1]`` (on one worker unless their ``concurrent_reads`` is true).
    ``workers`` defaults to the BLAS thread count (module docstring).
    """
    width = min(CHUNK_ROWS, max(rows, 1))
    p = plan(offsets, max(1, BLOCK_ELEMENTS // width))
    m = p.n_targets
    if m == 0:
        return np.zeros((0, A.shape[1])), np.zeros((0, B.shape[1]))
    chunks = [(t0, min(t0 + width, rows)) for t0 in range(0, rows, width)]
    if workers is None:
        parallel = all(isinstance(x, np.ndarray) or getattr(x, "concurrent_reads", False) for x in (A, B))
        workers = spare_threads() if parallel else 1
    workers = max(1, min(workers, len(chunks)))
    with one_blas_thread() if workers > 1 else nullcontext():
        if workers == 1:
            parts = [_work(flat, p, A, B, chunks, width)]
        else:
            with ThreadPoolExecutor(workers) as pool:
                parts = list(pool.map(lambda w: _work(flat, p, A, B, chunks[w::workers], width), range(workers)))
    G, S = parts[0]
    for Gw, Sw in parts[1:]:
        G += Gw
        S += Sw
    out_G, out_S = np.empty_like(G), np.empty_like(S)
    out_G[p.order], out_S[p.order] = G, S
    return out_G, out_S
