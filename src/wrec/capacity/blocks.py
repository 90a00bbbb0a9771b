"""States that need not fit in memory: read in row blocks, decomposed by a blockwise QR, projected block by block.

``memory_capacity``, ``ipc``, ``capacities`` and ``capacity_by_readout`` accept, besides an in-memory array:

* a ``.npy`` file (a path; rows read by file reads) or a ``numpy.memmap``: rows are read where they are needed;
* a ``dask.array`` chunked along time (one chunk across the columns);
* a torch tensor (CPU or CUDA; CuPy arrays through DLPack): the projections run on its device
  (``wrec.capacity.backend``);
* a sequence of row blocks (2-D arrays of one width), or a function that returns a fresh iterator over them
  (the blocks are read more than once, so a one-shot generator is refused).

Pass 1 reads every block once: column sums, ranges, the growth check and the R factor of [1, X] by a
blockwise (TSQR) QR: R of the stacked R factors of the blocks equals R of the whole matrix, and the trailing
block of R([1, X]) is R of the centred X (Demmel et al., SIAM J. Sci. Comput. 34, 2012). The singular values
and the rank rule come from R, never from a Gram matrix of raw states (which squares the condition number):
each block's R is CholeskyQR2's only where κ([1, X_block]) ≤ 10⁷ (``wrec.capacity.core.r_factor``, the route of
``decompose``; backward stable there, as Householder's is), else Householder's.
The basis is U = (X − x̄)·diag(d)·W, W = V_r Σ_r⁻¹ from the SVD of R; one pass measures UᵀU and refines W by its
Cholesky factor (as CholeskyQR2 does), so U is orthonormal to rounding even where Σ_r spans the 10⁷ the rank
rule allows, and one more pass stores the row leverages h_t = ‖U_t‖² (one float per row).
Pass 2 never forms U: each target block is projected onto the centred rows themselves, G = Zᵀ[X − x̄, 1, h]
(reading and centring a block costs no GEMM), and the loadings (X − x̄)ᵀz̃ are mapped by diag(d)·W once per
target block. Memory: O(N² + T + rows per block · (N + targets per chunk)): the states (N floats per row)
are never held, only the input and the leverages (a few floats per row).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import scipy.linalg

from wrec import _checks
from wrec.capacity.backend import NUMPY, NumpyBackend, TorchBackend, as_tensor, is_tensor
from wrec.capacity.core import (
    _EPS,
    GROWTH_BLOCKS,
    Capacities,
    RankRule,
    _Basis,
    check_growth,
    check_samples,
    kept_rank,
    prefix_ranks,
    r_factor,
    readout_sizes,
)

READ_ROWS = 1 << 13  # rows read at once from an array-like source (memory O(READ_ROWS · N))


def is_blocked(states: object) -> bool:
    """Whether ``states`` is one of the out-of-memory forms (module docstring), not an in-memory array."""
    if isinstance(states, (str, os.PathLike, np.memmap, Iterator)) or callable(states):
        return True
    if _is_dask(states) or is_tensor(states):
        return True
    return isinstance(states, (list, tuple)) and len(states) > 0 and all(
        isinstance(b, np.ndarray) and b.ndim == 2 for b in states)


def _any(x: object) -> Any:
    return x


def _is_dask(x: object) -> bool:
    return type(x).__module__.startswith("dask.") and hasattr(x, "chunks") and hasattr(x, "compute")


def _host(x: Any) -> Any:
    """A block as something ``np.asarray`` reads: dask blocks computed, tensors copied to the host."""
    if _is_dask(x):
        return x.compute()
    if is_tensor(x):
        return x.detach().cpu().numpy()
    return x


def _npy(path: str | os.PathLike[str], name: str) -> Any:
    path = os.fspath(path)
    if not path.endswith(".npy"):
        raise ValueError(f"{name} as a path must be a .npy file, got {path!r}")
    return NpyRows(path)


class NpyRows:
    """Rows of a C-ordered ``.npy`` file read on demand by plain file reads, as ``array[t0:t1]``.

    Unlike a memory map, the pages read stay in the page cache and not in this process's resident memory (a
    memmap read through once counts the whole file in RSS). Fortran-ordered files are read through a memmap.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        header = np.load(path, mmap_mode="r")  # reads the header; no data page is touched
        self.shape, self.dtype, self.ndim = header.shape, header.dtype, header.ndim
        self.offset = int(header.offset) if isinstance(header, np.memmap) else 0
        self._fortran = not header.flags.c_contiguous
        del header

    def __getitem__(self, rows: slice) -> np.ndarray:
        if self._fortran or not isinstance(rows, slice) or self.ndim != 2:
            return np.load(self.path, mmap_mode="r")[rows]
        t0, t1, step = rows.indices(self.shape[0])
        if step != 1:
            raise ValueError("NpyRows reads contiguous row ranges only")
        out = np.empty((max(t1 - t0, 0), self.shape[1]), dtype=self.dtype)
        with open(self.path, "rb") as fh:
            fh.seek(self.offset + t0 * self.shape[1] * self.dtype.itemsize)
            if fh.readinto(out.data.cast("B")) != out.nbytes:
                raise ValueError(f"{self.path} is shorter than its header says (rows {t0}..{t1})")
        return out


def _tensor_source(source: object, name: str) -> tuple[Any, TorchBackend]:
    tensor = as_tensor(source)
    if tensor.ndim != 2:
        raise ValueError(f"{name} must be 2-D (T, N), got shape {tuple(tensor.shape)}")
    backend = TorchBackend(tensor.device)
    if tensor.is_complex() or tensor.dtype == backend.torch.bool:
        raise TypeError(f"{name} must hold real numbers, got dtype {tensor.dtype}")
    return tensor, backend


def _array_source(source: object, name: str) -> Any:
    array = _any(source)
    if array.ndim != 2:
        raise ValueError(f"{name} must be 2-D (T, N), got shape {array.shape}")
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise TypeError(f"{name} must hold real numbers, got dtype {array.dtype}")
    return array


def _block_factory(source: object, name: str) -> Callable[[], Iterable[np.ndarray]]:
    if callable(source):
        return source
    if isinstance(source, (list, tuple)):
        blocks = list(source)
        return lambda: iter(blocks)
    if isinstance(source, Iterator):
        raise TypeError(f"{name} blocks are read more than once: pass a list of blocks or a function that returns "
                        "a new iterator over them, not an iterator or generator")
    raise TypeError(f"{name} must be an array, a .npy path, a memmap, a dask array, a sequence of row blocks "
                    f"or a function returning an iterator of them, got {type(source).__name__}")


class RowBlocks:
    """Row blocks of a state matrix (module docstring), read as float64 with the first ``skip`` rows left out.

    Iterating yields (first row, block) pairs; ``rows(t0, t1)`` reads any row range (sequential sources are
    re-read from their start when asked for an earlier row).
    """

    def __init__(self, source: object, *, skip: int = 0, columns: np.ndarray | None = None,
                 name: str = "states") -> None:
        self.name = name
        self.skip = skip
        self.columns = columns
        self._array: Any = None
        self._factory: Callable[[], Iterable[np.ndarray]] | None = None
        self.backend: NumpyBackend | TorchBackend = NUMPY
        if isinstance(source, (str, os.PathLike)):
            source = _npy(source, name)
        if is_tensor(source):
            self._array, self.backend = _tensor_source(source, name)
        elif isinstance(source, (np.ndarray, NpyRows)) or _is_dask(source):
            self._array = _array_source(source, name)
        else:
            self._factory = _block_factory(source, name)

    def narrowed(self, *, skip: int = 0, columns: np.ndarray | None = None) -> RowBlocks:
        """The same source with ``skip`` more rows left out and only ``columns`` (in that order) kept."""
        out = object.__new__(RowBlocks)
        out.__dict__.update({k: v for k, v in self.__dict__.items() if k in ("name", "_array", "_factory", "backend")})
        out.skip = self.skip + skip
        out.columns = self.columns if columns is None else columns if self.columns is None else self.columns[columns]
        return out

    @property
    def n_columns(self) -> int:
        """N, the width of every block (read from the first block of a sequential source)."""
        if self.columns is not None:
            return len(self.columns)
        if self._array is not None:
            return int(self._array.shape[1])
        for raw in self._raw():
            return int(np.shape(raw)[1]) if np.ndim(raw) == 2 else 0
        raise ValueError(f"{self.name} has no rows")

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
            block = np.asarray(_host(raw))
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
            yield start + cut - self.skip, block[cut:] if self.columns is None else block[cut:, self.columns]

    def device_rows(self, t0: int, t1: int) -> Any:
        """Rows t0..t1 − 1 as float64 where the states live (a torch tensor on its device; else ``rows``)."""
        if self.backend is NUMPY:
            return self.rows(t0, t1)
        part = self._array[self.skip + t0 : self.skip + t1]
        part = part if self.columns is None else part[:, self.backend.index(self.columns)]
        return self.backend.asarray(part)

    def rows(self, t0: int, t1: int) -> np.ndarray:
        """Rows t0..t1 − 1 (after the skipped ones) as a float64 array."""
        if self._array is not None:
            part = np.asarray(_host(self._array[self.skip + t0 : self.skip + t1]), dtype=np.float64)
            return part if self.columns is None else part[:, self.columns]
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
        part = r_factor(np.hstack([np.ones((X.shape[0], 1)), X]))
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


class _Rows:
    """Rows of A = [X − x̄, 1, H] (``kind="A"``) or B = [H, 1] (``"B"``) read from the state blocks on request
    (H: one leverage column per readout size), made where the states live (``backend``). The last range is kept:
    A and B ask for the same rows in turn."""

    def __init__(self, dec: _BlockBasis, kind: str) -> None:
        self.dec, self.kind = dec, kind
        self.backend = xp = dec.blocks.backend
        w = dec.leverage_rows.shape[1]
        self.shape = (dec.n_samples, dec.mean.size + 1 + w if kind == "A" else w + 1)
        self._mean, self._H = xp.asarray(dec.mean), xp.asarray(dec.leverage_rows)  # on the device once

    def __getitem__(self, rows: slice) -> Any:
        dec, xp = self.dec, self.backend
        t0, t1 = rows.start or 0, dec.n_samples if rows.stop is None else rows.stop
        out = xp.zeros((t1 - t0, self.shape[1]))
        N = dec.mean.size
        if self.kind == "B":
            out[:, :-1] = self._H[t0:t1]
            out[:, -1] = 1.0
            return out
        last = dec.__dict__.get("_last")
        if last is not None and last[0] == (t0, t1):
            return last[1]
        out[:, :N] = dec.blocks.device_rows(t0, t1)
        out[:, :N] -= self._mean
        out[:, N] = 1.0
        out[:, N + 1 :] = self._H[t0:t1]
        dec.__dict__["_last"] = ((t0, t1), out)
        return out

    @property
    def concurrent_reads(self) -> bool:
        """Whether several threads may read rows at once (``targets.project``'s workers): B's rows (the
        leverages) always; A's where the states are read by position (an array, a memmap, a ``.npy`` file),
        not from a sequence of blocks, whose reading position is shared."""
        return self.kind == "B" or self.dec.blocks._array is not None

    @property
    def distributed(self) -> bool:
        """Whether the rows live in a dask array: then ``project_by_blocks`` spreads the projection over dask."""
        return self.kind == "A" and _is_dask(self.dec.blocks._array)

    def project_by_blocks(
        self, basis: np.ndarray, degrees: np.ndarray, delays: np.ndarray, offset: int, B: Any
    ) -> tuple[np.ndarray, np.ndarray]:
        """``targets.project`` with one dask task per chunk of the states' time axis: each task reads its chunk
        where dask keeps it (a worker of a ``distributed.Client``, if one is active) and projects the targets on
        those rows; the client sums the (m, ·) partial results in row order. A task lost with its worker is
        recomputed by dask from the same inputs, so the table does not change."""
        import dask

        dec, blocks = self.dec, self.dec.blocks
        edges = np.unique(np.clip(np.cumsum((0, *blocks._array.chunks[0])) - blocks.skip, 0, dec.n_samples))
        ranges = list(zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True))
        tasks = []
        for t0, t1 in ranges:
            X = blocks._array[blocks.skip + t0 : blocks.skip + t1]
            X = X if blocks.columns is None else X[:, blocks.columns]
            rows = (dec.leverage_rows[t0:t1], basis[:, t0 : t1 + offset], np.asarray(B[t0:t1]))
            tasks.append(dask.delayed(_project_rows, pure=True)(X, dec.mean, rows, degrees, delays, offset))
        with warnings.catch_warnings():
            # the graph carries each block's input basis and leverages (a few floats per row, never the states):
            # kept in the graph, a task lost with its worker is recomputed from it
            warnings.filterwarnings("ignore", "Sending large graph", UserWarning)
            parts = dask.compute(*tasks)
        return sum(p[0] for p in parts), sum(p[1] for p in parts)


def _project_rows(
    X: np.ndarray, mean: np.ndarray, rows: tuple[np.ndarray, np.ndarray, np.ndarray], degrees: np.ndarray,
    delays: np.ndarray, offset: int,
) -> tuple[np.ndarray, np.ndarray]:
    """One dask task of ``_Rows.project_by_blocks``: the projections on one row block. ``rows`` holds the block's
    leverages H, its basis columns (from ``offset`` before its first row) and its rows of B."""
    from wrec.capacity.targets import project

    H, basis, B = rows
    A = np.empty((X.shape[0], mean.size + 1 + H.shape[1]))
    np.subtract(np.asarray(X, dtype=np.float64), mean, out=A[:, : mean.size])
    A[:, mean.size] = 1.0
    A[:, mean.size + 1 :] = H
    return project(basis, degrees, delays, offset, A, B)


@dataclass(frozen=True, eq=False)
class _BlockBasis(_Basis):
    """States in row blocks, projected in the coordinates of the centred states themselves: G = Zᵀ[X − x̄, 1, H]
    is accumulated block by block (reading and centring rows costs no GEMM), and the N-column projections
    g = (X − x̄)ᵀz̃ are mapped to the basis afterwards, once per block of targets (subclasses: ``_project``).

    ``mean`` and ``scale`` (N,) centre and standardise the columns (scale 0 for a constant column);
    ``leverage_rows`` (T, w) holds h_t for each readout size; ``column_sums`` = 1ᵀ(X − x̄) (≈ 0, kept exact)."""

    blocks: RowBlocks
    mean: np.ndarray
    scale: np.ndarray
    leverage_rows: np.ndarray
    column_sums: np.ndarray
    n_samples: int

    @cached_property
    def augmented(self) -> Any:
        return _Rows(self, "A")

    @cached_property
    def squared(self) -> Any:
        return _Rows(self, "B")

    @cached_property
    def _column_sums(self) -> np.ndarray:
        return self.column_sums

    def _project(self, g: np.ndarray) -> np.ndarray:
        """Squared projections of the centred, standardised target loadings g·scale (m, N) onto the basis,
        summed per readout size: (m,) or (m, n_readouts)."""
        raise NotImplementedError

    def from_projections(self, G: np.ndarray, sq: np.ndarray) -> np.ndarray:
        g, denom = self._centred(G, sq)
        out = self._project(g * self.scale)
        return np.clip(out / (denom if out.ndim == 1 else denom[:, None]), 0.0, 1.0)


@dataclass(frozen=True, eq=False)
class BlockDecomposition(_BlockBasis):
    """The decomposition of states read in row blocks: the basis U_t = (x_t − x̄)·diag(scale)·W, never formed;
    ``W`` (N, r) from the SVD of R (module docstring)."""

    W: np.ndarray
    singular_values: np.ndarray
    rank: int

    def _project(self, g: np.ndarray) -> np.ndarray:
        p = g @ self.W
        return np.einsum("jr,jr->j", p, p)


@dataclass(frozen=True, eq=False)
class BlockNestedDecomposition(_BlockBasis):
    """``wrec.capacity.NestedDecomposition`` for states in row blocks: with X̃ = QR (R from the blockwise QR,
    columns standardised), Qᵀz̃ = R⁻ᵀX̃ᵀz̃, a forward substitution whose first L entries use only the first L
    neurons, so C_L is a cumulative sum; a rank-deficient prefix uses its SVD R_LL = U S Vᵀ, the basis
    X̃_L V_r S_r⁻¹, i.e. the directions ``fallback[i]`` = V_r S_r⁻¹ applied to X̃_Lᵀz̃."""

    R: np.ndarray
    readouts: np.ndarray
    rank: np.ndarray
    fallback: dict[int, np.ndarray]

    def _project(self, g: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):  # beyond a zero pivot the entries are inf: only fallback sizes use them
            y = scipy.linalg.solve_triangular(self.R, g.T, trans="T", lower=False, check_finite=False).T
            out = np.cumsum(y * y, axis=1)[:, self.readouts - 1]
        for i, M in self.fallback.items():
            p = g[:, : M.shape[0]] @ M
            out[:, i] = np.einsum("jr,jr->j", p, p)
        return out


def _standardised(s: Scan, standardize: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, scale, R·diag(scale)) from pass 1, constant columns (as ``centred_states``) set to 0."""
    mean = s.sums / s.n_rows
    constant = s.high - s.low <= 8.0 * _EPS * np.maximum(np.abs(s.high), np.abs(s.low))
    R = s.R.copy()
    R[:, constant] = 0.0
    norms = np.linalg.norm(R, axis=0)  # ‖x_j − x̄_j‖: Q has orthonormal columns
    scale = np.where(constant, 0.0, 1.0 / np.where(norms > 0.0, norms, 1.0)) if standardize else \
        np.where(constant, 0.0, 1.0)
    return mean, scale, R * scale


def _row_passes(blocks: RowBlocks, T: int) -> Iterator[tuple[int, int, np.ndarray]]:
    for t0 in range(0, T, READ_ROWS):
        t1 = min(T, t0 + READ_ROWS)
        yield t0, t1, blocks.rows(t0, t1)


def decompose_blocks(blocks: RowBlocks, *, rank: RankRule = "kubota", standardize: bool = True) -> BlockDecomposition:
    """Pass 1, the rank rule on R, a refinement pass and a pass for the leverages (module docstring)."""
    s = scan(blocks)
    check_bounded(s)
    T, N = s.n_rows, s.n_cols
    mean, scale, Rs = _standardised(s, standardize)
    _, sv, Vt = scipy.linalg.svd(Rs, check_finite=False, lapack_driver="gesdd")
    r = kept_rank(sv, N, rank)
    check_samples(T, r)
    W = scale[:, None] * (Vt[:r].T / sv[:r])
    # refinement: UᵀU = CᵀC, then U·C⁻¹ is orthonormal to rounding; also 1ᵀ(X − x̄) for the exact mean removal
    gram, colsum = np.zeros((r, r)), np.zeros(N)
    for _, _, X in _row_passes(blocks, T):
        Xc = X - mean
        colsum += Xc.sum(axis=0)
        U = Xc @ W
        gram += U.T @ U
    if r:
        C = scipy.linalg.cholesky(gram, lower=False, check_finite=False)
        W = scipy.linalg.solve_triangular(C, W.T, trans="T", lower=False, check_finite=False).T
    h = np.empty((T, 1))
    for t0, t1, X in _row_passes(blocks, T):
        U = (X - mean) @ W
        h[t0:t1, 0] = np.einsum("tr,tr->t", U, U)
    return BlockDecomposition(blocks=blocks, mean=mean, scale=scale, leverage_rows=h, column_sums=colsum,
                              n_samples=T, W=np.ascontiguousarray(W / np.where(scale > 0, scale, 1.0)[:, None]),
                              singular_values=sv, rank=r)


def nested_decompose_blocks(
    blocks: RowBlocks, readouts: np.ndarray, *, rank: RankRule = "kubota", standardize: bool = True
) -> BlockNestedDecomposition:
    """``wrec.capacity.nested_decompose`` for states in row blocks: R from pass 1, the same rank rule per prefix,
    and one pass for the leverages h_t(L) and the column sums."""
    s = scan(blocks)
    check_bounded(s)
    T, N = s.n_rows, s.n_cols
    readouts = readout_sizes(readouts, N)
    mean, scale, R = _standardised(s, standardize)
    ranks, fallback = prefix_ranks(R, readouts, rank, side="right")
    check_samples(T, int(ranks.max()))
    H = np.empty((T, readouts.size))
    colsum = np.zeros(N)
    for t0, t1, X in _row_passes(blocks, T):
        Xs = (X - mean)
        colsum += Xs.sum(axis=0)
        Xs *= scale
        with np.errstate(all="ignore"):
            Q = scipy.linalg.solve_triangular(R, Xs.T, trans="T", lower=False, check_finite=False).T
            H[t0:t1] = np.cumsum(Q * Q, axis=1)[:, readouts - 1]
        for i, M in fallback.items():
            B = Xs[:, : M.shape[0]] @ M
            H[t0:t1, i] = np.einsum("tr,tr->t", B, B)
    return BlockNestedDecomposition(blocks=blocks, mean=mean, scale=scale, leverage_rows=H, column_sums=colsum,
                                    n_samples=T, R=R, readouts=readouts.astype(np.int64), rank=ranks,
                                    fallback=fallback)


def decompose_aligned(
    blocks: RowBlocks, u: np.ndarray, offset: int, *, rank: RankRule, standardize: bool,
    readouts: np.ndarray | None = None,
) -> _BlockBasis:
    """The decomposition of the state rows t ≥ offset of blocked states (nested for a grid of ``readouts``),
    checked to be aligned with u (T,)."""
    blocks = blocks.narrowed(skip=offset)
    dec: _BlockBasis = decompose_blocks(blocks, rank=rank, standardize=standardize) if readouts is None else \
        nested_decompose_blocks(blocks, readouts, rank=rank, standardize=standardize)
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
