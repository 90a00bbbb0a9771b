"""Trainable recurrent cells as ``torch.nn.Module``s that follow ``torch.nn.GRU``'s contract (needs the
``[torch]`` extra; torch loads on first use of a name)."""

from typing import TYPE_CHECKING

from wrec._lazy import attach

_EXPORTS = {
    **dict.fromkeys(["CfC", "CfCCell", "LowRankSparse", "LowRankSparseGRU", "LowRankSparseLSTM",
                     "LowRankSparseParametrization", "LowRankSparseRNN", "low_rank_sparse_", "recurrent_matrices",
                     "spectral_summary"], "cfc"),
    **dict.fromkeys(["LiGRU", "LiGRUParams", "SLiGRU", "eta_bound", "fused_light_gru", "ligru_step"], "sligru"),
    **dict.fromkeys(["DiagonalSSMKernel", "LinearDiagonalSSM", "StableSSM", "gradient_scale", "memory_function",
                     "reparam_fn", "reparam_inverse"], "stablessm"),
}

__all__: list[str] = [
    "CfC", "CfCCell", "DiagonalSSMKernel", "LiGRU", "LiGRUParams", "LinearDiagonalSSM", "LowRankSparse",
    "LowRankSparseGRU", "LowRankSparseLSTM", "LowRankSparseParametrization", "LowRankSparseRNN", "SLiGRU",
    "StableSSM", "eta_bound", "fused_light_gru", "gradient_scale", "ligru_step", "low_rank_sparse_",
    "memory_function", "recurrent_matrices", "reparam_fn", "reparam_inverse", "spectral_summary",
]

__getattr__, __dir__ = attach(globals(), _EXPORTS, submodules=["cfc", "sligru", "stablessm"])

if TYPE_CHECKING:
    from wrec.nn.cfc import (
        CfC,
        CfCCell,
        LowRankSparse,
        LowRankSparseGRU,
        LowRankSparseLSTM,
        LowRankSparseParametrization,
        LowRankSparseRNN,
        low_rank_sparse_,
        recurrent_matrices,
        spectral_summary,
    )
    from wrec.nn.sligru import LiGRU, LiGRUParams, SLiGRU, eta_bound, fused_light_gru, ligru_step
    from wrec.nn.stablessm import (
        DiagonalSSMKernel,
        LinearDiagonalSSM,
        StableSSM,
        gradient_scale,
        memory_function,
        reparam_fn,
        reparam_inverse,
    )

del TYPE_CHECKING, attach
