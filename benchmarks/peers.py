"""The other libraries ``benchmarks/run.py`` times wrec against, each set up to compute what wrec computes.

Every peer is optional: ``version`` says whether it is installed, and the builders here are only called when it is.
SpeechBrain is not in wrec's environment (its package wants a torchaudio matching torch); ``SpeechBrainSLiGRU`` was
run with speechbrain 1.1.2 on ``PYTHONPATH``.
ipc-module needs Python ≥ 3.12, so it runs in a subprocess under an interpreter named by ``--ipc-python``,
``$WREC_IPC_PYTHON`` or ``$IPC_MODULE_PYTHON`` (``benchmarks/capacity_ipc_module.py``'s variable); none by default.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def version(dist: str) -> str | None:
    """The installed version of the distribution ``dist`` (its pip name), or None when it is not installed."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def ipc_python(given: str | None) -> str | None:
    """The interpreter that runs ipc-module: ``given``, else $WREC_IPC_PYTHON, else $IPC_MODULE_PYTHON; None if
    none is named or the named one does not exist."""
    for candidate in (given, os.environ.get("WREC_IPC_PYTHON"), os.environ.get("IPC_MODULE_PYTHON")):
        if candidate:
            return candidate if Path(candidate).is_file() or shutil.which(candidate) else None
    return None


def reservoirpy_run(W: np.ndarray, w_in: np.ndarray, dtype: type) -> Callable[[np.ndarray], np.ndarray]:
    """ReservoirPy's ``Reservoir`` node with wrec's ESN (the same W, w_in, zero bias, no leak): ``go(u)`` runs it
    over u (T,) from the zero state and returns its states (asked for float32, ReservoirPy 0.4.2 returns float64
    states: it mixes the two)."""
    from reservoirpy.nodes import Reservoir

    node = Reservoir(W=W.astype(dtype), Win=w_in[:, None].astype(dtype), bias=0.0, lr=1.0, input_dim=1, dtype=dtype)

    def go(u: np.ndarray) -> np.ndarray:
        states = node.run(u[:, None].astype(dtype))
        node.reset()
        return states

    return go


class SnnTorchRSNN(nn.Module):
    """snnTorch's recurrent LIF layer (``RLeaky``, subtractive reset) and a leaky non-spiking readout (``Leaky``
    without reset) with the weights of a one-layer ``wrec.spiking.RSNN``: the same network (its forward matches
    wrec's to rounding, ``tests/test_rsnn.py``); the surrogate derivative is snnTorch's default (arctan) where
    wrec's default is the triangle, the same cost per step."""

    def __init__(self, net: nn.Module) -> None:
        import snntorch as snn

        super().__init__()
        w_in, w_rec = net.layer_weights(0)
        H, N = w_in.shape
        self.fc_in = nn.Linear(N, H, bias=False)
        self.lif = snn.RLeaky(beta=net.params.alpha, linear_features=H, reset_mechanism="subtract",
                              threshold=net.params.threshold)
        self.fc_out = nn.Linear(H, net.output_size)
        self.out = snn.Leaky(beta=net.params.kappa, reset_mechanism="none")
        with torch.no_grad():
            self.fc_in.weight.copy_(w_in)
            self.lif.recurrent.weight.copy_(w_rec)
            self.lif.recurrent.bias.zero_()
            self.fc_out.weight.copy_(net.weight_out)
            self.fc_out.bias.copy_(net.bias_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Readout potentials y (T, B, K) for x (T, B, N)."""
        spk, mem = self.lif.init_rleaky()
        y = self.out.init_leaky()
        ys = []
        for t in range(x.size(0)):
            spk, mem = self.lif(self.fc_in(x[t]), spk, mem)
            _, y = self.out(self.fc_out(spk), y)
            ys.append(y)
        return torch.stack(ys)

    def gradient(self, x: torch.Tensor, target: torch.Tensor) -> None:
        """BPTT: the mean over time of the cross-entropy of y_t (wrec's ``rsnn_loss``), backward."""
        self.zero_grad(set_to_none=True)
        y = self(x)
        T, B, K = y.shape
        F.cross_entropy(y.reshape(T * B, K), target.repeat(T)).backward()


class SpeechBrainSLiGRU(nn.Module):
    """SpeechBrain's ``SLiGRU`` (one layer, its default batch normalisation) on time-major input, as wrec's."""

    def __init__(self, hidden: int, batch: int, length: int) -> None:
        from speechbrain.nnet.RNN import SLiGRU

        super().__init__()
        self.rnn = SLiGRU(hidden_size=hidden, input_shape=(batch, length, hidden), num_layers=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out, h = self.rnn(x.transpose(0, 1))
        return out.transpose(0, 1), h
