"""benchmarks/run.py at its smoke size: every hot path has a row, every row its columns, and absent peers are named."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"
COLUMNS = ["hot path", "size", "wrec", "peer", "peer time", "ratio (peer/wrec)", "fraction of limit", "load"]
HOT_PATHS = ["reservoir simulation", "reservoir streaming", "capacity decomposition", "IPC",
             "spike coding network simulation", "spike coding network learning", "SLi-GRU", "CfC", "RSNN forward",
             "RSNN gradient, BPTT", "RSNN gradient, online e-prop", "StableSSM"]


def test_smoke_table(tmp_path, monkeypatch):
    monkeypatch.delenv("WREC_IPC_PYTHON", raising=False)
    monkeypatch.delenv("IPC_MODULE_PYTHON", raising=False)
    out, js = tmp_path / "table.md", tmp_path / "table.json"
    proc = subprocess.run([sys.executable, str(BENCH), "--smoke", "--out", str(out), "--json", str(js)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    text = out.read_text()
    assert text in proc.stdout  # the file holds the printed table
    lines = text.splitlines()
    assert lines[0].startswith("Machine: ") and "cores, BLAS threads" in lines[0] and "torch threads" in lines[0]
    header = lines.index("| " + " | ".join(COLUMNS) + " |")
    body = [line for line in lines[header + 2:] if line.startswith("| ")]
    assert all(line.count(" | ") == len(COLUMNS) - 1 for line in body)
    for name in HOT_PATHS:
        assert any(line.startswith(f"| {name}") for line in body), name

    record = json.loads(js.read_text())
    rows = record["rows"]
    assert len(rows) == len(body) and record["sizes"] == "smoke"
    assert {"cores", "blas_threads", "torch_threads", "load"} <= set(record["machine"])
    for row in rows:
        assert row["error"] is None and row["wrec_s"] > 0 and row["load"] >= 0
        if row["peer_s"] is not None:
            assert row["ratio"] == row["peer_s"] / row["wrec_s"]
        if row["limit_s"] is not None:
            assert row["fraction"] == row["limit_s"] / row["wrec_s"]
    by_path = {row["hot_path"]: row for row in rows}
    assert by_path["IPC, raw capacities (ipc)"]["peer"].startswith("ipc-module: no Python")  # none given
    assert all(row["limit_s"] for row in rows
               if row["hot_path"].startswith(("reservoir simulation", "capacity decomposition")))
    stream = by_path["reservoir streaming (run_blocks)"]  # run's time scaled to the long T: ratio = steps/s ratio
    assert stream["peer"].startswith("wrec run at T = ") and stream["ratio"] > 0
    for mode in ("conv", "scan"):  # the step loop is the baseline of the StableSSM modes
        row = by_path[f"StableSSM forward + backward, {mode} mode"]
        assert row["peer"].startswith("wrec step loop") and row["peer_s"] > 0
        assert row["peer_s"] == by_path["StableSSM forward + backward, recurrent mode"]["wrec_s"]
    for row in rows:  # a peer is either timed or says why not
        assert row["peer_s"] is not None or row["peer"].startswith("—") or "not installed" in row["peer"] \
            or "no Python" in row["peer"], row


def test_ipc_interpreter_lookup(tmp_path, monkeypatch):
    """ipc-module's interpreter: the option first, then $WREC_IPC_PYTHON; a named one that is missing is None."""
    spec = importlib.util.spec_from_file_location("bench_peers", BENCH.parent / "peers.py")
    peers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(peers)
    monkeypatch.delenv("WREC_IPC_PYTHON", raising=False)
    monkeypatch.delenv("IPC_MODULE_PYTHON", raising=False)
    assert peers.ipc_python(None) is None
    assert peers.ipc_python(sys.executable) == sys.executable
    assert peers.ipc_python(str(tmp_path / "no-such-python")) is None
    monkeypatch.setenv("WREC_IPC_PYTHON", sys.executable)
    assert peers.ipc_python(None) == sys.executable
    assert peers.version("numpy") is not None and peers.version("no-such-distribution-wrec") is None
