"""The sweep runner: every task once, results stored as they finish, an interrupted sweep resumes, and the same
numbers on any executor (in-process, a process pool, a real Dask cluster)."""

import contextlib
import dataclasses
import functools
import os
import random
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sweep_tasks
from sweep_tasks import Point, grid
from wrec import sweep
from wrec.store import CorruptResultWarning, Store, config_key, legacy_config_key

TESTS = Path(__file__).parent


@dataclasses.dataclass(frozen=True)
class Task:
    x: int
    scale: float = 2.0


def test_runs_each_config_labels_and_resumes(tmp_path):
    calls = []

    def fn(c):
        calls.append(c.x)
        return pd.DataFrame({"y": [c.x * c.scale]})

    configs = [Task(i) for i in range(4)]
    store = Store(tmp_path)
    first = sweep.run(fn, configs, store=store)
    assert first["y"].tolist() == [0.0, 2.0, 4.0, 6.0]
    assert first["x"].tolist() == [0, 1, 2, 3] and (first["scale"] == 2.0).all()
    again = sweep.run(fn, configs, store=store)
    assert calls == [0, 1, 2, 3]  # nothing recomputed
    pd.testing.assert_frame_equal(first, again)


def test_a_field_added_with_a_default_recomputes_nothing(tmp_path):
    calls = []

    def fn(c):
        calls.append(c.x)
        return pd.DataFrame({"y": [c.x * c.scale]})

    store = Store(tmp_path)
    first = sweep.run(fn, [Task(i) for i in range(3)], store=store)
    Later = dataclasses.make_dataclass("Task", [("x", int), ("scale", float, dataclasses.field(default=2.0)),
                                                ("noise", float, dataclasses.field(default=0.0))], frozen=True)
    again = sweep.run(fn, [Later(i) for i in range(3)], store=store)
    assert calls == [0, 1, 2]  # the stored results were reused
    pd.testing.assert_frame_equal(first, again)
    sweep.run(fn, [Later(0, noise=0.1)], store=store)  # a non-default value is another task
    assert calls == [0, 1, 2, 0]


def test_results_stored_under_the_legacy_key_are_rekeyed_not_recomputed(tmp_path):
    calls = []

    def fn(c):
        calls.append(c.x)
        return pd.DataFrame({"y": [c.x * c.scale]})

    store = Store(tmp_path)
    configs = [Task(i) for i in range(3)]
    for c in configs[:2]:  # as an earlier wrec stored them: under the hash of every field
        old = legacy_config_key(c)
        store.save(old, pd.DataFrame({"y": [-1.0], "x": [c.x], "scale": [c.scale], "key": [old]}))
    out = sweep.run(fn, configs, store=store)
    assert calls == [2]
    assert out["y"].tolist() == [-1.0, -1.0, 4.0]  # the stored numbers, not recomputed ones
    assert out["key"].tolist() == [config_key(c) for c in configs]
    assert store.keys() == sorted(config_key(c) for c in configs)  # the legacy files are gone


def test_interrupted_sweep_keeps_finished_results(tmp_path):
    store = Store(tmp_path)

    def flaky(c):
        if c.x == 2:
            raise KeyboardInterrupt
        return pd.DataFrame({"y": [c.x]})

    with pytest.raises(KeyboardInterrupt):
        sweep.run(flaky, [Task(i) for i in range(4)], store=store)
    assert len(store.table()) == 2  # tasks 0 and 1 are on disk
    done = []
    result = sweep.run(lambda c: done.append(c.x) or pd.DataFrame({"y": [c.x]}), [Task(i) for i in range(4)],
                       store=store)
    assert done == [2, 3]
    assert result["y"].tolist() == [0, 1, 2, 3]


def test_empty_grid_and_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="configs is empty"):
        sweep.run(lambda c: pd.DataFrame(), [])
    with pytest.raises(ValueError, match="workers must be >= 1"):
        sweep.run(sweep_tasks.measure, grid(2), workers=0)
    with pytest.raises(ValueError, match="not both"):
        sweep.run(sweep_tasks.measure, grid(2), workers=2, executor=object())
    with pytest.raises(TypeError, match="dataclass instance"):
        sweep.run(sweep_tasks.measure, [{"i": 1}])


def test_duplicate_configs_run_once_and_keep_their_places():
    calls = []

    def fn(p):
        calls.append(p.i)
        return sweep_tasks.measure(p)

    table = sweep.run(fn, [Point(1), Point(0), Point(1)])
    assert calls == [1, 0]
    assert table["i"].tolist() == [1] * 3 + [0] * 3 + [1] * 3


@pytest.mark.parametrize("workers", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_a_failing_task_names_its_config_and_keeps_the_others(tmp_path, workers):
    store = Store(tmp_path)
    with pytest.raises(ArithmeticError, match=r"task 2 is broken") as info:
        sweep.run(functools.partial(sweep_tasks.fails_at, bad=2), grid(4), store=store, workers=workers)
    assert "Point(i=2" in "\n".join(info.value.__notes__)  # the note names the config
    stored = {p.i for p in grid(4) if config_key(p) in store}
    assert stored == {0, 1} if workers == 1 else {0, 1} <= stored <= {0, 1, 3}  # (3 may have been under way)


def test_a_result_that_is_not_a_frame_is_a_type_error_naming_the_config():
    with pytest.raises(TypeError, match=r"returned list, not a DataFrame: Point\(i=1"):
        sweep.run(sweep_tasks.not_a_frame, grid(3))


def test_nonfinite_results_are_stored(tmp_path):
    table = sweep.run(sweep_tasks.with_nonfinite, grid(2), store=Store(tmp_path))
    assert np.isnan(table["value"][0]) and table["value"][1] == np.inf and table["value"][2] == -np.inf
    pd.testing.assert_frame_equal(Store(tmp_path).table().sort_values(["i", "stat"], ignore_index=True),
                                  table.sort_values(["i", "stat"], ignore_index=True))


def test_task_streams_depend_only_on_coordinates():
    draw = lambda *c: sweep.task_rng(*c).standard_normal(4)  # noqa: E731
    np.testing.assert_array_equal(draw(1, 2, "tanh"), draw(1, 2, "tanh"))
    distinct = [draw(1, 2, "tanh"), draw(1, 2, "linear"), draw(1, 3, "tanh"), draw(2, 2, "tanh"), draw(1, 2),
                draw(1, "2", "tanh"), draw(1, 2.0, "tanh"), draw(1, -2, "tanh"), draw(1, "tanh", 2)]
    assert len({d.tobytes() for d in distinct}) == len(distinct)
    # an integer coordinate is SeedSequence's own spawn key
    spawned = np.random.SeedSequence(5).spawn(4)[3]
    np.testing.assert_array_equal(sweep.task_rng(5, 3).random(3), np.random.default_rng(spawned).random(3))
    # strings hash stably (SHA-256), not with Python's per-process hash()
    assert sweep.task_seed(0, "tanh").generate_state(1)[0] == 1439537665
    with pytest.raises(TypeError, match="coordinates must be int, str or float"):
        sweep.task_seed(0, (1, 2))
    with pytest.raises(ValueError, match="root_seed must be >= 0"):
        sweep.task_seed(-1, 0)


@pytest.mark.slow
def test_process_pool_gives_the_in_process_numbers_and_caps_blas(tmp_path, monkeypatch):
    for var in sweep_tasks.BLAS_VARS:  # (this process has loaded its BLAS already: unsetting changes nothing here)
        monkeypatch.delenv(var, raising=False)
    configs = grid(8)
    local = sweep.run(sweep_tasks.measure, configs)
    pooled = sweep.run(sweep_tasks.measure_and_env, configs, workers=2, store=Store(tmp_path))
    assert (pooled[list(sweep_tasks.BLAS_VARS)] == "1").all().all()  # one BLAS thread per worker
    pd.testing.assert_frame_equal(local, pooled.drop(columns=list(sweep_tasks.BLAS_VARS)))
    assert not set(sweep_tasks.BLAS_VARS) & set(os.environ)  # this process's environment is restored


# ---------------------------------------------------------------------------------------------------------------
# A real Dask cluster: two worker processes.

@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    with cluster, distributed.Client(cluster) as client:
        yield client


@pytest.mark.slow
def test_dask_cluster_gives_the_local_numbers(dask_client, tmp_path):
    configs = grid(8)
    local = sweep.run(sweep_tasks.measure, configs)
    pids = set(dask_client.run(os.getpid).values())
    assert len(pids) == 2 and os.getpid() not in pids
    on_dask = sweep.run(sweep_tasks.measure, configs, executor=dask_client.get_executor(), store=Store(tmp_path))
    pd.testing.assert_frame_equal(local, on_dask)
    assert Store(tmp_path).keys() == sorted(config_key(c) for c in configs)


@pytest.mark.slow
def test_a_dask_worker_killed_mid_sweep_changes_nothing(dask_client, tmp_path):
    configs = grid(12, sleep=0.1)
    local = sweep.run(sweep_tasks.measure, configs)
    fn = functools.partial(sweep_tasks.dies_once, victim=5, marker=str(tmp_path / "killed"))
    result = sweep.run(fn, configs, executor=dask_client.get_executor(), store=Store(tmp_path / "results"))
    assert (tmp_path / "killed").exists()  # a worker did die with task 5 in hand
    pd.testing.assert_frame_equal(local, result)


# ---------------------------------------------------------------------------------------------------------------
# SIGKILL, several times, at random points: resume to the clean table, nothing lost, nothing computed twice.

N_KILLED = 24
SWEEP = f"""
import functools, sys
sys.path.insert(0, {{tests!r}})
import sweep_tasks
from wrec import sweep
from wrec.store import Store
sweep.run(functools.partial(sweep_tasks.logged, log={{log!r}}), sweep_tasks.grid({N_KILLED}, sleep=0.04),
          store=Store({{root!r}}), workers={{workers}})
"""


def _log(path: Path) -> list[int]:
    return [int(line.split()[1]) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.parametrize("workers", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_sigkill_at_random_points_resumes_to_the_clean_table(tmp_path, workers):
    root, log = tmp_path / "results", tmp_path / "executions.log"
    code = SWEEP.format(tests=str(TESTS), log=str(log), root=str(root), workers=workers)
    configs = grid(N_KILLED, sleep=0.04)
    index = {config_key(p): p.i for p in configs}
    store, rng, kills = Store(root), random.Random(4), []  # kills: (log position, tasks stored by then)
    for _ in range(4 if workers == 1 else 3):
        proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
        target, deadline = len(store.keys()) + rng.randint(1, 3), time.monotonic() + 60
        while len(store.keys()) < target and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        time.sleep(rng.uniform(0.0, 0.08))  # a random point: mid-task, mid-write or between tasks
        os.killpg(proc.pid, signal.SIGKILL)  # the whole job: the sweep and its pool workers
        proc.wait()
        for key in store.keys():
            store.load(key)  # every result file is whole
        kills.append((len(_log(log)), {index[k] for k in store.keys()}))
    assert 0 < len(kills[0][1]) < N_KILLED  # (the first kill, at least, came part-way)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    executions = _log(log)
    for position, stored in kills:
        assert not stored & set(executions[position:]), "a stored task was computed again"
    assert set(executions) == set(range(N_KILLED))  # and every task was computed
    final = sweep.run(sweep_tasks.measure, configs, store=store)
    assert len(_log(log)) == len(executions)  # nothing left to compute
    clean = sweep.run(sweep_tasks.measure, configs, store=Store(tmp_path / "clean"))
    pd.testing.assert_frame_equal(final, clean)
    assert not any(p.suffix == ".parquet" for p in root.glob(".*"))  # leftover temporaries are not results


def test_task_dir_keeps_partial_state_until_the_result_is_stored(tmp_path):
    """A task that checkpoints in ``task_dir()`` and is interrupted resumes from its checkpoint; the folder goes
    once the result is stored; outside a sweep (or without a store) there is no task folder."""
    from wrec import checkpoint

    seen = []

    def fn(c):
        folder = sweep.task_dir()
        seen.append(folder)
        saved = checkpoint.load(folder / "ck.npz")
        start = 0 if saved is None else int(saved[1]["done"])
        for i in range(start, 4):
            checkpoint.save(folder / "ck.npz", {}, {"done": i + 1})
            if i == 1 and saved is None:
                raise KeyboardInterrupt  # killed half-way
        return pd.DataFrame({"start": [start]})

    store = Store(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        sweep.run(fn, [Task(1)], store=store)
    assert seen[0] == tmp_path / sweep.PARTIAL / config_key(Task(1))
    assert checkpoint.load(seen[0] / "ck.npz")[1] == {"done": 2}
    out = sweep.run(fn, [Task(1)], store=store)
    assert out["start"].tolist() == [2]  # resumed after the two finished steps
    assert not seen[0].exists() and store.keys() == [config_key(Task(1))]
    seen[0].mkdir()  # left by an interrupt between storing the result and removing the folder
    sweep.run(fn, [Task(1)], store=store)
    assert not seen[0].exists() and len(seen) == 2  # removed by the next run, without running the task
    assert sweep.task_dir() is None
    assert sweep.run(lambda c: pd.DataFrame({"d": [str(sweep.task_dir())]}), [Task(2)])["d"].tolist() == ["None"]


def _damage(store: Store, key: str) -> bytes:
    """Flip one byte of the stored result of ``key`` (the first after the magic number that verification
    catches) and return the damaged bytes."""
    path, good = store.path(key), store.path(key).read_bytes()
    for position in range(4, len(good)):
        bad = bytearray(good)
        bad[position] ^= 0xFF
        path.write_bytes(bytes(bad))
        try:
            store.load(key)
        except ValueError:
            return bytes(bad)
    raise AssertionError("no flip was caught")  # pragma: no cover


@pytest.mark.parametrize("damage", ["flipped byte", "no checksum"])
def test_a_corrupt_stored_result_is_set_aside_and_recomputed(tmp_path, damage):
    """A stored result that fails verification is renamed aside (kept, not deleted), with a warning naming the
    file and the reason, and computed again: the table is the clean one and nothing else is recomputed."""
    store, configs = Store(tmp_path), grid(3)
    clean = sweep.run(sweep_tasks.measure, configs, store=store)
    key = config_key(configs[1])
    path = store.path(key)
    if damage == "no checksum":  # a result written before results carried a digest
        store.load(key).to_parquet(path, index=False)
        bad, reason = path.read_bytes(), "no checksum"
    else:
        bad, reason = _damage(store, key), "unreadable Parquet|content digest mismatch"
    calls = []
    with pytest.warns(CorruptResultWarning, match=rf"{re.escape(str(path))} is corrupt: ({reason}).*set aside"):
        again = sweep.run(lambda p: calls.append(p.i) or sweep_tasks.measure(p), configs, store=store)
    assert calls == [1]
    pd.testing.assert_frame_equal(again, clean)
    kept = list(tmp_path.glob(f"_{path.name}.corrupt-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == bad
    assert store.keys() == sorted(config_key(c) for c in configs)
    pd.testing.assert_frame_equal(sweep.run(sweep_tasks.measure, configs, store=store), clean)  # and no warning


def _own_folders(table: pd.DataFrame, root: Path) -> None:
    """Each task saw its own folder and key, at its start and after the other tasks had started."""
    own = [str(root / sweep.PARTIAL / k) for k in table["key"]]
    assert table["before"].tolist() == own
    assert table["after"].tolist() == own, "a task saw another task's folder"
    assert table["context_key"].tolist() == table["key"].tolist()


def test_tasks_sharing_a_process_each_see_their_own_task_dir(tmp_path):
    """Four tasks at once on four threads of one process: each task's ``task_dir()`` stays its own while the
    others start (a value shared by the threads would be the last task's)."""
    configs = grid(8, sleep=0.2)
    with ThreadPoolExecutor(4) as pool:
        table = sweep.run(sweep_tasks.reports_task_dir, configs, executor=pool, store=Store(tmp_path))
    _own_folders(table, tmp_path)
    assert sweep.task_dir() is None and sweep.task_context() is None


def test_tasks_on_the_threads_of_a_dask_worker_each_see_their_own_task_dir(tmp_path):
    distributed = pytest.importorskip("distributed")
    configs = grid(8, sleep=0.2)
    # one worker, four threads, in this process; its HTTP server on a free port (the module's other cluster may run)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=4, processes=False,
                                  dashboard_address=":0") as cluster, distributed.Client(cluster) as client:
        table = sweep.run(sweep_tasks.reports_task_dir, configs, executor=client.get_executor(),
                          store=Store(tmp_path))
    _own_folders(table, tmp_path)


# ---------------------------------------------------------------------------------------------------------------
# SIGTERM to the sweep alone (not its process group): the pool's workers must not go on as orphans.

TERMINATED = """
import sys
sys.path.insert(0, {tests!r})
import sweep_tasks
from sweep_tasks import Point
from wrec import sweep
from wrec.store import Store
sweep.run(sweep_tasks.marks_task_dir, {points!r}, store=Store({root!r}), workers=2)
"""


def _running(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (exited, but not yet reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False  # (gone between the two looks)


def _assert_gone(pids: set[int], message: str) -> None:
    """Every process of ``pids`` exits within 3 s."""
    deadline = time.monotonic() + 3
    while any(map(_running, pids)) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not any(map(_running, pids)), message


def _kill_all(pids: set[int], proc: subprocess.Popen) -> None:
    """Clean up after a kill test, whatever it found: the workers, then the sweep's process group."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.mark.slow
def test_sigterm_terminates_the_pool_workers_and_keeps_what_finished(tmp_path):
    root = tmp_path / "results"
    points = [Point(0, sleep=0.05)] + [Point(i, sleep=60.0) for i in range(1, 4)]  # 1-3 outlast the test
    code = TERMINATED.format(tests=str(TESTS), points=points, root=str(root))
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    store, partial, pids = Store(root), root / sweep.PARTIAL, set()
    first, others = config_key(points[0]), {config_key(p) for p in points[1:]}
    try:
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:  # task 0 stored, both workers in a long task
            pids = {int(f.read_text()) for f in partial.glob("*/pid") if f.parent.name in others and f.stat().st_size}
            if first in store and not (partial / first).exists() and len(pids) == 2:
                break
            time.sleep(0.01)
        assert len(pids) == 2 and os.getpid() not in pids and proc.pid not in pids, "the sweep did not get going"
        proc.send_signal(signal.SIGTERM)  # the sweep only, as a job scheduler's kill would
        assert proc.wait(timeout=10) == 128 + signal.SIGTERM
        _assert_gone(pids, "pool workers outlived the sweep")
    finally:
        _kill_all(pids, proc)
    assert store.keys() == [first]  # the finished result stays stored
    pd.testing.assert_frame_equal(store.load(first).drop(columns=["i", "kind", "seed", "sleep", "key"]),
                                  sweep_tasks.measure(points[0]))
    kept = {f.parent.name for f in partial.glob("*/pid")}
    assert len(kept) == 2 and kept < others  # the interrupted tasks' folders stay, for their reruns to resume


# ---------------------------------------------------------------------------------------------------------------
# The same BLAS threading wherever a task runs; pool workers die with the sweep; what a run computed and reused.

def blas_threads_and_numbers(p: Point) -> pd.DataFrame:
    """The BLAS thread count the task ran with, and numbers from BLAS-heavy linear algebra on its own stream."""
    from threadpoolctl import threadpool_info

    time.sleep(p.sleep)
    a = sweep.task_rng(p.seed, p.i).standard_normal((300, 300))
    q, r = np.linalg.qr(a @ a.T)
    threads = max(info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas")
    values = [float(threads), float(np.trace(r)), float(q.sum()), float(np.linalg.eigvalsh(a + a.T).sum())]
    return pd.DataFrame({"stat": ["threads", "trace_r", "sum_q", "sum_eig"], "value": values})


def _blas_threads() -> list[int]:
    from threadpoolctl import threadpool_info

    return [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]


def test_in_process_tasks_run_with_one_blas_thread_and_restore_it():
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=2, user_api="blas"):  # (conftest sets one thread; a user's process has more)
        assert set(_blas_threads()) == {2}
        table = sweep.run(blas_threads_and_numbers, grid(2))
        assert (table.loc[table["stat"] == "threads", "value"] == 1).all()
        assert set(_blas_threads()) == {2}


@pytest.mark.slow
def test_in_process_and_pool_results_are_bit_identical(tmp_path):
    from threadpoolctl import threadpool_limits

    configs = grid(4)
    with threadpool_limits(limits=2, user_api="blas"):  # as in a user's process (conftest sets one thread)
        here = sweep.run(blas_threads_and_numbers, configs)
    pooled = sweep.run(blas_threads_and_numbers, configs, workers=2, store=Store(tmp_path))
    pd.testing.assert_frame_equal(here, pooled, check_exact=True)


def test_the_table_says_what_was_computed_and_reused(tmp_path):
    store, configs = Store(tmp_path), grid(4)
    assert sweep.count_stored(configs, store) == (4, 0)
    first = sweep.run(sweep_tasks.measure, configs[:3], store=store)
    assert first.attrs == {"tasks": 3, "tasks_computed": 3, "tasks_reused": 0}
    assert sweep.count_stored([*configs, configs[0]], store) == (4, 3)  # distinct configs
    again = sweep.run(sweep_tasks.measure, configs, store=store)
    assert again.attrs == {"tasks": 4, "tasks_computed": 1, "tasks_reused": 3}


@pytest.mark.slow
def test_sigkill_of_the_sweep_ends_its_pool_workers(tmp_path):
    root = tmp_path / "results"
    points = [Point(i, sleep=60.0) for i in range(2)]
    code = TERMINATED.format(tests=str(TESTS), points=points, root=str(root))
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    partial, pids = root / sweep.PARTIAL, set()
    try:
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline and len(pids) < 2:
            pids = {int(f.read_text()) for f in partial.glob("*/pid") if f.stat().st_size}
            time.sleep(0.01)
        assert len(pids) == 2 and proc.pid not in pids, "the sweep did not get going"
        proc.send_signal(signal.SIGKILL)  # the sweep only: it cannot stop its workers itself
        proc.wait(timeout=10)
        _assert_gone(pids, "pool workers outlived the SIGKILLed sweep")
    finally:
        _kill_all(pids, proc)
