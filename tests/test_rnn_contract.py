"""The shared nn.GRU contract (wrec.rnn): a GRU written as a per-layer function and stacked by rnn_forward must
reproduce torch.nn.GRU itself — values, not only shapes — for every layout option, and bad calls must raise torch-style
errors."""

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from wrec.rnn import RNNInputError, RNNOptions, dropout, rnn_forward  # noqa: E402


def _gru_layer_fn(gru: nn.GRU):
    """One direction of one layer of `gru`, run with torch's GRU cell: the oracle for the stacking."""

    def layer_fn(layer, direction, x, h0):
        sfx = RNNOptions.suffix(layer, direction)
        w = [getattr(gru, f"{n}{sfx}") for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        h, outs = h0, []
        for t in range(x.size(0)):
            h = torch.gru_cell(x[t], h, *w)
            outs.append(h)
        return torch.stack(outs), h

    return layer_fn


def _opts(gru: nn.GRU) -> RNNOptions:
    return RNNOptions(gru.input_size, gru.hidden_size, gru.num_layers, gru.bias, gru.batch_first, gru.dropout,
                      gru.bidirectional)


CASES = [
    dict(num_layers=1, bidirectional=False, batch_first=False),
    dict(num_layers=2, bidirectional=True, batch_first=False),
    dict(num_layers=3, bidirectional=True, batch_first=True),
    dict(num_layers=2, bidirectional=False, batch_first=True),
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("with_hx", [True, False])
def test_stack_reproduces_torch_gru(case, batched, with_hx):
    g = torch.Generator().manual_seed(0)
    gru = nn.GRU(3, 5, dtype=torch.float64, **case)
    T, B = 6, 4
    D = 2 if case["bidirectional"] else 1
    if batched:
        shape = (B, T, 3) if case["batch_first"] else (T, B, 3)
        hx_shape = (D * case["num_layers"], B, 5)
    else:
        shape, hx_shape = (T, 3), (D * case["num_layers"], 5)
    x = torch.randn(shape, generator=g, dtype=torch.float64)
    hx = torch.randn(hx_shape, generator=g, dtype=torch.float64) if with_hx else None
    want_out, want_h = gru(x, hx)
    out, h_n = rnn_forward(_opts(gru), x, hx, _gru_layer_fn(gru), training=False, dtype=torch.float64)
    assert out.shape == want_out.shape and h_n.shape == want_h.shape
    torch.testing.assert_close(out, want_out, rtol=0, atol=1e-12)
    torch.testing.assert_close(h_n, want_h, rtol=0, atol=1e-12)


def test_dropout_between_layers_only():
    # p = 1 zeroes every layer's input but the first: layer 2 then sees zeros, as in nn.GRU in training mode
    gru = nn.GRU(3, 4, num_layers=2, dropout=1.0, dtype=torch.float64).train()
    x = torch.randn(5, 2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    want_out, want_h = gru(x)
    for gen in (None, torch.Generator().manual_seed(3)):
        out, h_n = rnn_forward(_opts(gru), x, None, _gru_layer_fn(gru), training=True, generator=gen)
        torch.testing.assert_close(out, want_out, rtol=0, atol=1e-12)
        torch.testing.assert_close(h_n, want_h, rtol=0, atol=1e-12)
    # in eval mode dropout is off: same as nn.GRU.eval()
    out, _ = rnn_forward(_opts(gru), x, None, _gru_layer_fn(gru), training=False)
    torch.testing.assert_close(out, gru.eval()(x)[0], rtol=0, atol=1e-12)


def test_dropout_mask_scaling_and_generator():
    x = torch.ones(2000, 50, dtype=torch.float64)
    a = dropout(x, 0.3, True, torch.Generator().manual_seed(5))
    b = dropout(x, 0.3, True, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)  # reproducible from the generator
    vals = torch.unique(a)
    torch.testing.assert_close(vals, torch.tensor([0.0, 1 / 0.7], dtype=torch.float64))
    assert abs((a == 0).double().mean().item() - 0.3) < 0.01  # 1e5 draws: sd 0.0014
    assert dropout(x, 0.3, False, None) is x


def test_h_n_layout_layer_major_then_direction():
    # layer_fn that returns its (layer, direction) code as h_last: h_n[l·D + d] must carry code 10·l + d
    def layer_fn(layer, direction, x, h0):
        h = torch.full_like(h0, 10.0 * layer + direction)
        return h.expand(x.size(0), *h.shape), h

    opts = RNNOptions(2, 3, num_layers=3, bidirectional=True)
    _, h_n = rnn_forward(opts, torch.zeros(4, 1, 2), None, layer_fn, training=False)
    assert h_n[:, 0, 0].tolist() == [0, 1, 10, 11, 20, 21]


def test_reverse_direction_sees_flipped_time():
    seen = {}

    def layer_fn(layer, direction, x, h0):
        seen[direction] = x[:, 0, 0].clone()
        return x[..., :1].expand(-1, -1, 1).clone(), h0

    opts = RNNOptions(1, 1, bidirectional=True)
    x = torch.arange(5.0).reshape(5, 1, 1)
    out, _ = rnn_forward(opts, x, None, layer_fn, training=False)
    assert seen[0].tolist() == [0, 1, 2, 3, 4] and seen[1].tolist() == [4, 3, 2, 1, 0]
    # outputs are put back in the original time order
    assert out[:, 0, 1].tolist() == [0, 1, 2, 3, 4]


def test_extra_repr_matches_torch():
    for kw in [{}, dict(num_layers=2, bias=False, batch_first=True, dropout=0.5), dict(bidirectional=True)]:
        assert RNNOptions(3, 4, **kw).extra_repr() == nn.GRU(3, 4, **kw).extra_repr()


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        (dict(input_size=0), ValueError, "input_size must be greater than zero"),
        (dict(hidden_size=-1), ValueError, "hidden_size must be greater than zero"),
        (dict(num_layers=0), ValueError, "num_layers must be greater than zero"),
        (dict(dropout=1.5), ValueError, r"dropout should be a number in range \[0, 1\]"),
        (dict(dropout=True), ValueError, "dropout should be a number"),
        (dict(input_size=2.0), TypeError, "input_size should be of type int, got: float"),
        (dict(hidden_size=True), TypeError, "hidden_size should be of type int, got: bool"),
        (dict(bias=1), TypeError, "bias should be of type bool, got: int"),
        (dict(batch_first="yes"), TypeError, "batch_first should be of type bool"),
        (dict(bidirectional=None), TypeError, "bidirectional should be of type bool"),
    ],
)
def test_bad_constructor_arguments(kwargs, exc, match):
    args = dict(input_size=3, hidden_size=4) | kwargs
    with pytest.raises(exc, match=match):
        RNNOptions(**args)


def test_dropout_with_one_layer_warns_as_torch():
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1"):
        RNNOptions(3, 4, dropout=0.2)


def _never(*_):
    raise AssertionError("layer_fn must not run on a bad call")


@pytest.mark.parametrize(
    ("x", "hx", "exc", "match"),
    [
        (torch.zeros(5, 2, 3, 1), None, ValueError, "Expected input to be 2D or 3D, got 4D instead"),
        (torch.zeros(5), None, ValueError, "Expected input to be 2D or 3D, got 1D"),
        (torch.zeros(5, 2, 7), None, ValueError, "input.size\\(-1\\) must be equal to input_size. Expected 3, got 7"),
        (torch.zeros(5, 2, 3, dtype=torch.float64), None, ValueError, r"input dtype \(torch.float64\) does not"),
        (torch.zeros(5, 2, 3, dtype=torch.int64), None, TypeError, "floating-point"),
        (torch.zeros(0, 2, 3), None, ValueError, "sequence length to be larger than 0"),
        ([[0.0] * 3] * 5, None, TypeError, "input must be a torch.Tensor, got list"),
        (torch.zeros(5, 2, 3), torch.zeros(4, 3, 4), ValueError, r"Expected hidden size \(4, 2, 4\), got \[4, 3, 4\]"),
        (torch.zeros(5, 2, 3), torch.zeros(2, 4), ValueError, "batched 3-D input, hx should also be 3-D"),
        (torch.zeros(5, 3), torch.zeros(4, 1, 4), ValueError, "unbatched 2-D input, hx should also be 2-D"),
        (torch.zeros(5, 3), torch.zeros(3, 4), ValueError, r"Expected hidden size \(4, 4\), got \[3, 4\]"),
        (torch.zeros(5, 2, 3), torch.zeros(4, 2, 4, dtype=torch.float64), ValueError, "hx dtype"),
        (torch.zeros(5, 2, 3), torch.zeros(4, 2, 4, device="meta"), ValueError, "hx is on device meta"),
        (torch.zeros(5, 2, 3), [0.0], TypeError, "hx must be a torch.Tensor or None, got list"),
    ],
)
def test_bad_forward_calls(x, hx, exc, match):
    opts = RNNOptions(3, 4, num_layers=2, bidirectional=True)
    with pytest.raises(exc, match=match):
        rnn_forward(opts, x, hx, _never, training=False, dtype=torch.float32)


def test_input_errors_are_also_runtime_errors():
    # code written against nn.GRU catches RuntimeError for size mismatches
    with pytest.raises(RuntimeError):
        rnn_forward(RNNOptions(3, 4), torch.zeros(5, 2, 7), None, _never, training=False)
    assert issubclass(RNNInputError, ValueError)


def test_packed_sequence_is_a_type_error():
    packed = nn.utils.rnn.pack_padded_sequence(torch.zeros(5, 2, 3), [5, 3])
    with pytest.raises(TypeError, match="PackedSequence"):
        rnn_forward(RNNOptions(3, 4), packed, None, _never, training=False)
