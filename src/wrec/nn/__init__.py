"""Trainable recurrent cells as ``torch.nn.Module``s that follow ``torch.nn.GRU``'s contract (needs the
``[torch]`` extra)."""

from wrec.nn.sligru import LiGRU, SLiGRU, eta_bound, ligru_step

__all__: list[str] = ["LiGRU", "SLiGRU", "eta_bound", "ligru_step"]
