"""A spike coding network in Brian2: the held-out simulator of ``tests/test_brian2_crosscheck.py``.

Run as ``python brian2_scn.py IN.npz OUT.npz [IN.npz OUT.npz ...]`` in a Python that has brian2 2.10.1 (the
README's test command makes ``.venv-brian2`` on Python 3.12), not in wrec's environment: it imports neither wrec
nor anything of the repository. IN holds a network and its input as arrays: ``F`` (N, J), ``fast`` Ω (N, N),
``T`` (N,), optionally ``slow`` W (N, N), ``c`` (S, J) in 1/s, ``x0`` (J,), ``leak`` λ (1/s), ``dt`` (s),
``mode`` ("sequential" or "single") and ``rounds`` K. OUT holds the spikes in firing order (``steps``,
``neurons``, and ``rounds``: the round of its step each was fired in), ``leftover`` (the number of steps with a
neuron still above threshold after K rounds, which voids a comparison), the end-of-step traces ``V`` and ``r``
(S, N) and ``brian2_version``.

The model (Boerlin et al. 2013, a greedy spike rule) is written with Brian2's own equations and objects:

* the state update (``euler``, slot ``groups``): dV/dt = −λV + F c(t) + W r, dr/dt = −λr, with c a TimedArray
  and W r a summed variable of all-to-all synapses, which Brian2 updates before the group (from the r of the
  step's start);
* then K rounds in the slot ``after_groups``, each a summed variable, a threshold, a synaptic pathway and a
  reset: n_i counts the neurons with a larger V − T (or an equal one and a lower index); the round's event fires
  the neuron with V_i − T_i > 0 and n_i = 0, if there is one (the most depolarised, the lowest index among
  equals); its synapses add Ω's column to V (delay 0; the diagonal is the reset) and its reset adds 1 to r.

In ``"sequential"`` mode a step so fires one spike per round, each the largest excess over threshold after the
previous one's Ω column, until no neuron is above threshold (or K rounds have passed: ``leftover``). In
``"single"`` mode there is one round and the Ω pathway runs first in the slot, before the round's threshold, on the
event space the last step's threshold left: a spike's Ω column is added at the next step, after its state update.
"""

from __future__ import annotations

import sys
from typing import Any

import brian2
import numpy as np
from brian2 import (
    EventMonitor,
    Hz,
    Network,
    NeuronGroup,
    StateMonitor,
    Synapses,
    TimedArray,
    defaultclock,
    prefs,
    second,
    start_scope,
)


def _network(F: np.ndarray, slow: np.ndarray | None, c: np.ndarray, leak: float,
             events: int) -> tuple[NeuronGroup, Synapses]:
    """The NeuronGroup (the equations, the events ``round_k`` for k < ``events``) and its all-to-all Synapses (the
    summed variables n_k and W r, a pathway per round that adds Ω's column), not yet connected nor scheduled."""
    n, j = F.shape
    drive = " + ".join(f"F_{m} * c_in(t, {m})" for m in range(j))
    wr = "Wr" if slow is not None else "0*Hz"
    eqs = [f"dV/dt = -lam * V + {drive} + {wr} : 1", "dr/dt = -lam * r : 1", "T : 1 (constant)"]
    eqs += [f"F_{m} : 1 (constant)" for m in range(j)]
    eqs += [f"n_{k} : 1" for k in range(events)]
    if slow is not None:
        eqs.append("Wr : Hz")
    conditions = {f"round_{k}": f"V - T > 0 and n_{k} == 0" for k in range(events)}
    namespace = {"lam": leak * Hz, "c_in": TimedArray(c * Hz, dt=defaultclock.dt)}
    group = NeuronGroup(n, "\n".join(eqs), events=conditions, method="euler", namespace=namespace)
    larger = "V_pre - T_pre > V_post - T_post or (V_pre - T_pre == V_post - T_post and i < j)"
    model = ["w_fast : 1 (constant)"] + [f"n_{k}_post = int({larger}) : 1 (summed)" for k in range(events)]
    if slow is not None:
        model += ["w_slow : Hz (constant)", "Wr_post = w_slow * r_pre : Hz (summed)"]
    pathways = {f"round_{k}": "V_post += w_fast" for k in range(events)}
    syn = Synapses(group, group, "\n".join(model), on_pre=pathways, on_event={p: p for p in pathways})
    return group, syn


def _schedule(group: NeuronGroup, syn: Synapses, rounds: int, events: int, single: bool) -> None:
    """Round k in the slot ``after_groups``: the summed n_k (order 10k), the threshold (10k + 1), the Ω pathway
    (10k + 2; in single mode −1: at the next step, before the threshold, from the last step's event space) and the
    reset r += 1 (10k + 3). A round k ≥ ``rounds`` is only looked at (a neuron still above threshold?): its pathway
    is never run."""
    for k in range(events):
        (updater,) = (u for name, u in syn.summed_updaters.items() if name.startswith(f"n_{k}"))
        updater.when, updater.order = "after_groups", 10 * k
        group.set_event_schedule(f"round_{k}", when="after_groups", order=10 * k + 1)
        pathway = getattr(syn, f"round_{k}")
        pathway.when, pathway.order = "after_groups", -1 if single else 10 * k + 2
        pathway.active = k < rounds
        if k < rounds:
            group.run_on_event(f"round_{k}", "r += 1", when="after_groups", order=10 * k + 3)


def simulate(data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run the network of ``data`` (the arrays of IN) and return the arrays of OUT."""
    start_scope()
    prefs.codegen.target = "numpy"  # no compiler needed
    F, fast, T, c, slow = data["F"], data["fast"], data["T"], data["c"], data.get("slow")
    leak, dt = float(data["leak"]), float(data["dt"])
    single = str(data["mode"]) == "single"
    rounds = 1 if single else int(data["rounds"])
    events = rounds if single else rounds + 1  # sequential: one more round, looked at only
    defaultclock.dt = dt * second
    group, syn = _network(F, slow, c, leak, events)
    syn.connect()  # all pairs i → j, self included (Ω's diagonal is the reset)
    pre, post = np.asarray(syn.i[:]), np.asarray(syn.j[:])
    syn.w_fast[:] = fast[post, pre]  # Ω[:, k] is added at a spike of k
    if slow is not None:
        syn.w_slow[:] = slow[post, pre] * Hz
    _schedule(group, syn, rounds, events, single)
    group.T[:] = T
    for m in range(F.shape[1]):
        setattr(group, f"F_{m}", F[:, m])
    group.V[:] = F @ data["x0"]
    group.r[:] = 0.0
    monitors = [EventMonitor(group, f"round_{k}") for k in range(events)]
    traces = StateMonitor(group, ["V", "r"], record=True, when="end")
    net = Network(group, syn, traces, *monitors)  # (a list of monitors is invisible to Brian2's magic run())
    net.run(c.shape[0] * dt * second, namespace={})
    found = [(round(float(t) / dt), k, int(i)) for k, mon in enumerate(monitors[:rounds])
             for i, t in zip(mon.i[:], mon.t[:] / second, strict=True)]
    found.sort()  # by step, then round: the firing order (one spike per round)
    table = np.array(found, dtype=np.int64).reshape(-1, 3)
    leftover = 0 if single else len(monitors[rounds].i[:])
    return {"steps": table[:, 0], "rounds": table[:, 1], "neurons": table[:, 2], "leftover": np.array(leftover),
            "V": np.asarray(traces.V).T, "r": np.asarray(traces.r).T}


def main(argv: list[str]) -> None:
    """``brian2_scn.py IN OUT [IN OUT ...]``: one network per pair of files (Brian2 is imported once)."""
    if len(argv) < 3 or len(argv) % 2 == 0:
        raise SystemExit(f"usage: {argv[0]} IN.npz OUT.npz [IN.npz OUT.npz ...]")
    for source, target in zip(argv[1::2], argv[2::2], strict=True):
        with np.load(source) as f:
            data = {name: f[name] for name in f.files}
        out: dict[str, Any] = simulate(data)
        np.savez(target, brian2_version=np.array(brian2.__version__), **out)


if __name__ == "__main__":
    main(sys.argv)
