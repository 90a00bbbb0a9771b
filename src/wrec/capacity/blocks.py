"""States that need not fit in memory: read in row blocks, decomposed by a blockwise QR, projected block by block.

``memory_capacity``, ``ipc`` and ``capacities`` accept, besides an in-memory array, any of:

* a ``.npy`` file (a path) or a ``numpy.memmap``: rows are read where they are needed;
* a ``dask.array`` chunked along time (one chunk across the columns);
* a sequence of row blocks (2-D arrays of one width), or a function that returns a fresh iterator over them
  (the blocks are read more than once, so a one-shot generator is refused).

Pass 1 reads every block once: column sums, ranges, the growth check and the R factor of [1, X] by a
blockwise (TSQR) QR: R of the stacked R factors of the blocks equals R of the whole matrix, and the trailing
block of R([1, X]) is R of the centred X (Demmel et al., SIAM J. Sci. Comput. 34, 2012). The singular values
and the rank rule come from R, never from a Gram matrix of raw states (which squares the condition number).
The basis rows U_t = ((x_t − x̄)/d) V_r Σ_r⁻¹ are then made where a projection needs them; one more pass
measures UᵀU and refines U by its Cholesky factor (as CholeskyQR2 does), so U is orthonormal to rounding even
where Σ_r spans the 10⁷ the rank rule allows. Memory: O(N² + rows per block · (N + targets per chunk)).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import scipy.linalg

from wrec import _checks
from wrec.capacity.core import _EPS, GROWTH_BLOCKS, Capacities, RankRule, _Basis, check_growth, kept_rank

READ_ROWS = 1 << 13  # rows read at once from an array-like source (memory O(READ_ROWS · N))


def is_blocked(states: object) -> bool:
    """Whether ``states`` is one of the out-of-memory forms (module docstring), not an in-memory array."""
    if isinstance(states, (str, os.PathLike, np.memmap, Iterator)) or callable(states):
        return True
    if _is_dask(states):
        return True
    return isinstance(states, (list, tuple)) and len(states) > 0 and all(
        isinstance(b, np.ndarray) and b.ndim == 2 for b in states)


def _any(x: object) -> Any:
    return x


def _is_dask(x: object) -> bool:
    return type(x).__module__.startswith("dask.") and hasattr(x, "chunks") and hasattr(x, "compute")


class RowBlocks:
    """Row blocks of a state matrix (module docstring), read as float64 with the first ``skip`` rows left out.

    Iterating yields (first row, block) pairs; ``rows(t0, t1)`` reads any row range (sequential sources are
    re-read from their start when asked for an earlier row).
    """

    def __init__(self, source: object, *, skip: int = 0, name: str = "states") -> None:
        self.name = name
        self.skip = skip
        if isinstance(source, (str, os.PathLike)):
            path = os.fspath(source)
            if not path.endswith(".npy"):
                raise ValueError(f"{name} as a path must be a .npy file, got {path!r}")
            source = np.load(path, mmap_mode="r")
        self._array: Any = None
        self._factory: Callable[[], Iterable[np.ndarray]] | None = None
        if isinstance(source, np.ndarray) or _is_dask(source):
            array = _any(source)
            if array.ndim != 2:
                raise ValueError(f"{name} must be 2-D (T, N), got shape {array.shape}")
            if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
                raise TypeError(f"{name} must hold real numbers, got dtype {array.dtype}")
            self._array = array
        elif callable(source):
            self._factory = source
        elif isinstance(source, (list, tuple)):
            blocks = list(source)
            self._factory = lambda: iter(blocks)
        elif isinstance(source, Iterator):
            raise TypeError(f"{name} blocks are read more than once: pass a list of blocks or a function that returns "
                            "a new iterator over them, not an iterator or generator")
        else:
            raise TypeError(f"{name} must be an array, a .npy path, a memmap, a dask array, a sequence of row blocks "
                            f"or a function returning an iterator of them, got {type(source).__name__}")

    def with_skip(self, skip: int) -> RowBlocks:
        out = object.__new__(RowBlocks)
        out.__dict__.update({k: v for k, v in self.__dict__.items() if k in ("name", "_array", "_factory")})
        out.skip = self.skip + skip
        return out

    def _raw(self) -> Iterator[np.ndarray]:
        if self._array is not None:
            for t0 in range(0, self._array.shape[0], READ_ROWS):
                yield self._array[t0 : t0 + READ_ROWS]
            return
        assert self._factory is not None
        yield from self._factory()

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        seen, width = 0, None
        for raw in self._raw():
            block = np.asarray(_any(raw).compute() if _is_dask(raw) else raw)
            if block.ndim != 2:
                raise ValueError(f"{self.name} blocks must be 2-D (rows, N), got shape {block.shape}")
            if width is None:
                width = block.shape[1]
            elif block.shape[1] != width:
                raise ValueError(f"{self.name} blocks must all have {width} columns; the block at row {seen} has "
                                 f"{block.shape[1]}")
            block = _checks.array(block, self.name, ndim=2, finite=False)
            bad = ~np.isfinite(block)
            if bad.any():
                row = seen + int(np.argmax(bad.any(axis=1)))
                raise ValueError(f"{self.name} has a non-finite value (NaN or inf) at row {row}; remove or replace it")
            start, stop = seen, seen + block.shape[0]
            seen = stop
            if stop <= self.skip:
                continue
            cut = max(0, self.skip - start)
            yield start + cut - self.skip, block[cut:]

    def rows(self, t0: int, t1: int) -> np.ndarray:
        """Rows t0..t1 − 1 (after the skipped ones) as a float64 array."""
        if self._array is not None:
            part = self._array[self.skip + t0 : self.skip + t1]
            return np.asarray(part.compute() if _is_dask(part) else part, dtype=np.float64)
        cache = self.__dict__.setdefault("_cursor", {"iter": None, "start": 0, "block": None})
        pieces = []
        while t0 < t1:
            block, start = cache["block"], cache["start"]
            if block is None or t0 < start:
                cache.update(iter=iter(self), block=None)
                block = None
            if block is None or t0 >= start + block.shape[0]:
                try:
                    start, block = next(cache["iter"])
                except StopIteration:
                    raise ValueError(f"{self.name} has fewer rows than {self.skip + t1}") from None
                cache.update(start=start, block=block)
                continue
            stop = min(t1, start + block.shape[0])
            pieces.append(block[t0 - start : stop - start])
            t0 = stop
        return np.vstack(pieces) if len(pieces) != 1 else pieces[0]


@dataclass
class Scan:
    """What pass 1 learns about the states: shape, column sums and ranges, R of the centred columns, and the
    RMS of each block of rows (for the growth check)."""

    n_rows: int
    n_cols: int
    sums: np.ndarray
    high: np.ndarray
    low: np.ndarray
    R: np.ndarray
    block_rms: list[tuple[int, float]] = field(default_factory=list)


def scan(blocks: RowBlocks) -> Scan:
    """Pass 1 (module docstring)."""
    R: np.ndarray | None = None
    sums: Any = None
    high: Any = None
    low: Any = None
    T = 0
    rms: list[tuple[int, float]] = []
    for _, X in blocks:
        if X.shape[0] == 0:
            continue
        if sums is None:
            sums, high, low = X.sum(axis=0), X.max(axis=0), X.min(axis=0)
        else:
            sums += X.sum(axis=0)
            np.maximum(high, X.max(axis=0), out=high)
            np.minimum(low, X.min(axis=0), out=low)
        rms.append((X.shape[0], float(np.einsum("tn,tn->", X, X))))
        part = scipy.linalg.qr(np.hstack([np.ones((X.shape[0], 1)), X]), mode="r", check_finite=False)[0]
        part = part[: min(part.shape)]
        R = part if R is None else scipy.linalg.qr(np.vstack([R, part]), mode="r", check_finite=False)[0]
        R = R[: min(R.shape)]
        T += X.shape[0]
    if sums is None or high is None or low is None or R is None:
        raise ValueError(f"{blocks.name} has no rows")
    N = sums.size
    full = np.zeros((N + 1, N + 1))
    full[: R.shape[0]] = R[:, : N + 1]
    return Scan(n_rows=T, n_cols=N, sums=sums, high=high, low=low, R=full[1:, 1:], block_rms=rms)


def check_bounded(scan: Scan) -> None:
    """The growth check of ``wrec.capacity.core.check_bounded`` on tenths of the rows made of whole blocks."""
    if scan.n_rows < 2 * GROWTH_BLOCKS or len(scan.block_rms) < GROWTH_BLOCKS:
        return
    counts = np.array([n for n, _ in scan.block_rms], dtype=float)
    squares = np.array([s for _, s in scan.block_rms])
    groups = np.minimum((np.cumsum(counts) - counts) * GROWTH_BLOCKS // scan.n_rows, GROWTH_BLOCKS - 1).astype(int)
    rms = np.sqrt(np.bincount(groups, squares, GROWTH_BLOCKS) / np.bincount(groups, counts, GROWTH_BLOCKS))
    check_growth(rms)


class _LazyRows:
    """Rows of [U, 1, h] (``kind="A"``) or [h, 1] (``"B"``) made from the state blocks on request."""

    def __init__(self, dec: BlockDecomposition, kind: str) -> None:
        self.dec, self.kind = dec, kind
        r = dec.rank
        self.shape = (dec.n_samples, r + 2 if kind == "A" else 2)

    def __getitem__(self, rows: slice) -> np.ndarray:
        U, h = self.dec.basis_rows(rows.start or 0, self.dec.n_samples if rows.stop is None else rows.stop)
        ones = np.ones_like(h)
        return np.hstack([U, ones, h]) if self.kind == "A" else np.hstack([h, ones])


@dataclass(frozen=True, eq=False)
class BlockDecomposition(_Basis):
    """The decomposition of states read in row blocks: U_t = ((x_t − x̄)/d)·W, made on request (module docstring).

    ``W`` (N, r) maps standardised, centred state rows to the basis; ``mean`` and ``scale`` (N,) centre and
    scale them (scale 0 for a constant column)."""

    blocks: RowBlocks
    mean: np.ndarray
    scale: np.ndarray
    W: np.ndarray
    singular_values: np.ndarray
    rank: int
    n_samples: int
    column_sums: np.ndarray

    def basis_rows(self, t0: int, t1: int) -> tuple[np.ndarray, np.ndarray]:
        """(U, h) for rows t0..t1 − 1, h the row leverages as a column (the last range is kept: A and B ask for
        the same rows in turn)."""
        last = self.__dict__.get("_last")
        if last is not None and last[0] == (t0, t1):
            return last[1]
        U = ((self.blocks.rows(t0, t1) - self.mean) * self.scale) @ self.W
        out = U, np.einsum("tr,tr->t", U, U)[:, None]
        object.__setattr__(self, "_last", ((t0, t1), out))
        return out

    @cached_property
    def augmented(self) -> Any:
        return _LazyRows(self, "A")

    @cached_property
    def squared(self) -> Any:
        return _LazyRows(self, "B")

    @cached_property
    def _column_sums(self) -> np.ndarray:
        return self.column_sums

    def from_projections(self, G: np.ndarray, sq: np.ndarray) -> np.ndarray:
        proj, denom = self._centred(G, sq)
        return np.clip(np.einsum("jr,jr->j", proj, proj) / denom, 0.0, 1.0)


def decompose_blocks(blocks: RowBlocks, *, rank: RankRule = "kubota", standardize: bool = True) -> BlockDecomposition:
    """Pass 1, the rank rule on R, and the refinement pass (module docstring)."""
    s = scan(blocks)
    check_bounded(s)
    T, N = s.n_rows, s.n_cols
    mean = s.sums / T
    constant = s.high - s.low <= 8.0 * _EPS * np.maximum(np.abs(s.high), np.abs(s.low))
    R = s.R.copy()
    R[:, constant] = 0.0
    norms = np.linalg.norm(R, axis=0)  # ‖x_j − x̄_j‖: Q has orthonormal columns
    scale = np.where(constant, 0.0, 1.0 / np.where(norms > 0.0, norms, 1.0)) if standardize else \
        np.where(constant, 0.0, 1.0)
    _, sv, Vt = scipy.linalg.svd(R * scale, check_finite=False, lapack_driver="gesdd")
    r = kept_rank(sv, N, rank)
    if T <= r + 1:
        raise ValueError(f"states has T = {T} samples for rank r = {r}: too short for the number of neurons; "
                         f"use more time steps (T > r + 1, and T >> r for reliable capacities)")
    W = Vt[:r].T / sv[:r]
    # refinement: UᵀU = CᵀC, then U·C⁻¹ is orthonormal to rounding; also 1ᵀU for the exact mean removal
    gram, colsum = np.zeros((r, r)), np.zeros(r)
    for t0 in range(0, T, READ_ROWS):
        U = ((blocks.rows(t0, min(T, t0 + READ_ROWS)) - mean) * scale) @ W
        gram += U.T @ U
        colsum += U.sum(axis=0)
    if r:
        C = scipy.linalg.cholesky(gram, lower=False, check_finite=False)
        W = scipy.linalg.solve_triangular(C, W.T, trans="T", lower=False, check_finite=False).T
        colsum = scipy.linalg.solve_triangular(C, colsum, trans="T", lower=False, check_finite=False)
    return BlockDecomposition(blocks=blocks, mean=mean, scale=scale, W=np.ascontiguousarray(W), singular_values=sv,
                              rank=r, n_samples=T, column_sums=colsum)


def decompose_aligned(
    states: object, u: np.ndarray, offset: int, *, rank: RankRule, standardize: bool
) -> BlockDecomposition:
    """The decomposition of the state rows t ≥ offset of blocked states, checked to be aligned with u (T,)."""
    dec = decompose_blocks(RowBlocks(states).with_skip(offset), rank=rank, standardize=standardize)
    if dec.n_samples + offset != u.size:
        raise ValueError(f"states has T = {dec.n_samples + offset} rows but u has {u.size} samples; they must be "
                         "aligned (X[t] is the state right after u[t])")
    return dec


def capacities_of_blocks(states: object, Z: np.ndarray, *, rank: RankRule, standardize: bool) -> Capacities:
    """``wrec.capacity.capacities`` for states in row blocks and centred targets Z (T, m) in memory."""
    dec = decompose_blocks(RowBlocks(states), rank=rank, standardize=standardize)
    if dec.n_samples != Z.shape[0]:
        raise ValueError(f"targets has {Z.shape[0]} rows but states has {dec.n_samples}; they must be aligned")
    G = np.zeros((Z.shape[1], dec.rank + 2))
    S = np.zeros((Z.shape[1], 2))
    for t0 in range(0, dec.n_samples, READ_ROWS):
        t1 = min(dec.n_samples, t0 + READ_ROWS)
        G += Z[t0:t1].T @ dec.augmented[t0:t1]
        S += (Z[t0:t1] ** 2).T @ dec.squared[t0:t1]
    return Capacities(values=dec.from_projections(G, S[:, -1]), null=dec.null(G, S), rank=dec.rank,
                      n_samples=dec.n_samples)
