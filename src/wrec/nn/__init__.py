"""Trainable recurrent cells as ``torch.nn.Module``s that follow ``torch.nn.GRU``'s contract (needs the
``[torch]`` extra)."""

__all__: list[str] = []
