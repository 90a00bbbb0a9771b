"""The ``torch.nn.GRU`` contract that every wrec recurrent module follows, so that a user can swap ``nn.GRU`` for
any of them and change nothing else.

A cell supplies one function, ``layer_fn(layer, direction, x, h0) -> (out, h_last)``, that runs one direction of
one layer over a whole sequence; ``rnn_forward`` does the rest exactly as ``torch.nn.GRU`` does: input layout
(``batch_first``, unbatched ``(T, F)``), ``hx`` checks, stacking of layers and directions, dropout between layers,
and ``h_n`` laid out layer-major then direction (index ``layer * D + direction``). ``RNNOptions`` validates
the constructor arguments with torch's messages.

``layer_fn`` always sees time running forward: for ``direction == 1`` it receives the time-reversed sequence and
its outputs are reversed back here, so a reverse direction is the forward recursion on the flipped input with the
reverse weights. Errors on a call's input are ``RNNInputError``, a ``ValueError`` that is also a
``RuntimeError``, because ``torch.nn.GRU`` raises ``RuntimeError`` for some of them and code written against it
may catch that.

Shape (``D = 2`` if bidirectional else 1, ``L = num_layers``):
    input ``(T, B, F)``, ``(B, T, F)`` if ``batch_first``, or unbatched ``(T, F)``;
    hx ``(D·L, B, H)`` (unbatched: ``(D·L, H)``); output ``(T, B, D·H)`` (same layout as input); h_n like hx.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from numbers import Real

import torch
import torch.nn.functional as F
from torch import Tensor

LayerFn = Callable[[int, int, Tensor, Tensor], tuple[Tensor, Tensor]]
"""``layer_fn(layer, direction, x (T, B, F_layer), h0 (B, H)) -> (out (T, B, H), h_last (B, H))``."""


class RNNInputError(ValueError, RuntimeError):
    """A bad ``input`` or ``hx`` in a forward call (``ValueError``; also ``RuntimeError`` as torch raises)."""


def check_int(value: object, name: str) -> int:
    """``value`` if it is an int (not a bool), else a ``TypeError`` worded as torch's ``nn.RNNBase`` words it."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} should be of type int, got: {type(value).__name__}")
    return value


def check_bool(value: object, name: str) -> bool:
    """``value`` if it is a bool, else a ``TypeError`` worded as torch's ``nn.RNNBase`` words it."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} should be of type bool, got: {type(value).__name__}")
    return value


@dataclass(frozen=True)
class RNNOptions:
    """The constructor arguments ``torch.nn.GRU`` shares with every wrec recurrent module, validated as torch does.

    ``dropout`` is applied to the output of every layer but the last, in training mode only.
    """

    input_size: int
    hidden_size: int
    num_layers: int = 1
    bias: bool = True
    batch_first: bool = False
    dropout: float = 0.0
    bidirectional: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, Real) or not 0 <= self.dropout <= 1:
            raise ValueError("dropout should be a number in range [0, 1] representing the probability of an "
                             f"element being zeroed, got {self.dropout!r}")
        check_bool(self.bias, "bias")
        check_bool(self.batch_first, "batch_first")
        check_bool(self.bidirectional, "bidirectional")
        if check_int(self.input_size, "input_size") <= 0:
            raise ValueError(f"input_size must be greater than zero, got {self.input_size}")
        if check_int(self.hidden_size, "hidden_size") <= 0:
            raise ValueError(f"hidden_size must be greater than zero, got {self.hidden_size}")
        if check_int(self.num_layers, "num_layers") <= 0:
            raise ValueError(f"num_layers must be greater than zero, got {self.num_layers}")
        object.__setattr__(self, "dropout", float(self.dropout))
        if self.dropout > 0 and self.num_layers == 1:
            # torch.nn.GRU warns here too: the dropout would have no layer to act between
            warnings.warn("dropout option adds dropout after all but last recurrent layer, so non-zero dropout "
                          f"expects num_layers greater than 1, but got dropout={self.dropout} and num_layers="
                          f"{self.num_layers}", UserWarning, stacklevel=4)

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def layer_input_size(self, layer: int) -> int:
        """Features entering ``layer``: ``input_size`` for the first, ``D·hidden_size`` after."""
        return self.input_size if layer == 0 else self.num_directions * self.hidden_size

    @staticmethod
    def suffix(layer: int, direction: int) -> str:
        """torch's parameter-name suffix: ``_l{layer}`` plus ``_reverse`` for the reverse direction."""
        return f"_l{layer}" + ("_reverse" if direction == 1 else "")

    def extra_repr(self) -> str:
        """The same text as ``torch.nn.GRU``'s ``extra_repr``."""
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s


def prepare_input(
    opts: RNNOptions,
    input: Tensor,
    hx: Tensor | None,
    *,
    dtype: torch.dtype | None = None,
    name: str = "RNN",
) -> tuple[Tensor, Tensor, bool]:
    """Check a forward call and bring it to time-major batched form.

    Returns ``x (T, B, F)``, ``hx (D·L, B, H)`` (zeros if None) and whether the input was batched. ``dtype``
    is the parameters' dtype the input must match (None: not checked).
    """
    _check_input(opts, input, dtype, name)
    batched = input.dim() == 3
    x = input if not batched else (input.transpose(0, 1) if opts.batch_first else input)
    if not batched:
        x = x.unsqueeze(1)
    if x.size(0) == 0:
        raise RNNInputError(f"{name}: Expected sequence length to be larger than 0, got input of shape "
                            f"{tuple(input.shape)}")
    expected = (opts.num_directions * opts.num_layers, x.size(1), opts.hidden_size)
    if hx is None:
        return x, torch.zeros(expected, dtype=x.dtype, device=x.device), batched
    return x, _check_hx(hx, x, expected, batched, name), batched


def _check_input(opts: RNNOptions, input: object, dtype: torch.dtype | None, name: str) -> None:
    """nn.GRU's checks of ``input`` (type, 2-D or 3-D, floating, the parameters' dtype, the feature size)."""
    if isinstance(input, torch.nn.utils.rnn.PackedSequence):
        raise TypeError(f"{name} does not accept a PackedSequence (normalisation over padding would be wrong); "
                        "pass a padded tensor, e.g. from torch.nn.utils.rnn.pad_packed_sequence")
    if not isinstance(input, Tensor):
        raise TypeError(f"{name}: input must be a torch.Tensor, got {type(input).__name__}")
    if input.dim() not in (2, 3):
        raise RNNInputError(f"{name}: Expected input to be 2D or 3D, got {input.dim()}D instead")
    if not input.is_floating_point():
        raise TypeError(f"{name}: input must be a floating-point tensor, got dtype {input.dtype}")
    if dtype is not None and input.dtype != dtype:
        raise RNNInputError(f"RNN input dtype ({input.dtype}) does not match weight dtype ({dtype}). Convert "
                            f"input: input.to({dtype}), or convert model: model.to({input.dtype})")
    if input.size(-1) != opts.input_size:
        raise RNNInputError("input.size(-1) must be equal to input_size. "
                            f"Expected {opts.input_size}, got {input.size(-1)}")


def _check_hx(hx: object, x: Tensor, expected: tuple[int, int, int], batched: bool, name: str) -> Tensor:
    """nn.GRU's checks of a given ``hx`` against the time-major input ``x``; returns it batched (D·L, B, H)."""
    if not isinstance(hx, Tensor):
        raise TypeError(f"{name}: hx must be a torch.Tensor or None, got {type(hx).__name__}")
    if batched and hx.dim() != 3:
        raise RNNInputError(f"For batched 3-D input, hx should also be 3-D but got {hx.dim()}-D tensor")
    if not batched and hx.dim() != 2:
        raise RNNInputError(f"For unbatched 2-D input, hx should also be 2-D but got {hx.dim()}-D tensor")
    h = hx if batched else hx.unsqueeze(1)
    if tuple(h.shape) != expected:
        want = expected if batched else (expected[0], expected[2])
        raise RNNInputError(f"Expected hidden size {want}, got {list(hx.shape)}")
    if hx.dtype != x.dtype:
        raise RNNInputError(f"hx dtype ({hx.dtype}) does not match input dtype ({x.dtype})")
    if hx.device != x.device:
        raise RNNInputError(f"hx is on device {hx.device} but input is on device {x.device}")
    return h


def dropout(x: Tensor, p: float, training: bool, generator: torch.Generator | None) -> Tensor:
    """Inverted dropout ``x ⊙ Bernoulli(1−p)/(1−p)``; draws from ``generator`` if given, else as ``F.dropout``."""
    if not training or p == 0:
        return x
    if generator is None:
        return F.dropout(x, p, training=True)
    if p == 1:
        return torch.zeros_like(x)
    keep = torch.empty_like(x).bernoulli_(1 - p, generator=generator)
    return x * keep / (1 - p)


def rnn_forward(
    opts: RNNOptions,
    input: Tensor,
    hx: Tensor | None,
    layer_fn: LayerFn,
    *,
    training: bool,
    dtype: torch.dtype | None = None,
    generator: torch.Generator | None = None,
    name: str = "RNN",
) -> tuple[Tensor, Tensor]:
    """Run a stack of ``num_layers × D`` recurrent passes with ``torch.nn.GRU``'s contract.

    Layer ``l`` direction ``d`` is ``layer_fn(l, d, x_l, hx[l·D + d])`` where ``x_l`` is the input (``l = 0``)
    or the concatenated directions of layer ``l−1`` after dropout; the reverse direction sees ``x_l`` flipped in
    time. ``generator`` (optional) draws the inter-layer dropout masks; None uses torch's global RNG as nn.GRU.

    Shape: input ``(T, B, F)`` / ``(B, T, F)`` / ``(T, F)``; returns output ``(T, B, D·H)`` in the input's
    layout and ``h_n (D·L, B, H)`` (unbatched: ``(D·L, H)``).
    """
    x, h0, batched = prepare_input(opts, input, hx, dtype=dtype, name=name)
    D = opts.num_directions
    last: list[Tensor] = []
    for layer in range(opts.num_layers):
        if layer > 0:
            x = dropout(x, opts.dropout, training, generator)
        outs = []
        for direction in range(D):
            xin = x if direction == 0 else x.flip(0)
            out, h_last = layer_fn(layer, direction, xin, h0[layer * D + direction])
            outs.append(out if direction == 0 else out.flip(0))
            last.append(h_last)
        x = outs[0] if D == 1 else torch.cat(outs, dim=2)  # (T, B, D·H)
    h_n = torch.stack(last, 0)
    if not batched:
        return x.squeeze(1), h_n.squeeze(1)
    return (x.transpose(0, 1) if opts.batch_first else x), h_n
