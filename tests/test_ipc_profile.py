"""ipc-profile on a Dask cluster with ``row_chunk``: one table's projection spread over the workers, with the numbers
of the in-memory run."""

import pandas as pd
import pytest

from wrec import sweep
from wrec.experiments import ipc_profile

TINY = {"spectral_radii": (0.5, 0.9), "length": 4000, "washout": 500, "max_delay": ((1, 40), (2, 6), (3, 6)),
        "surrogates": 20}


def test_row_chunks_give_the_in_memory_numbers_locally():
    one = {**TINY, "spectral_radii": (0.5,)}
    whole = ipc_profile.evaluate(ipc_profile.Config(**one))
    chunked = ipc_profile.evaluate(ipc_profile.Config(**one, row_chunk=700))  # 700 does not divide T
    # blockwise = in-memory to 1e-10 on totals of ~30 over hundreds of targets, as for the engine (test_blocks)
    pd.testing.assert_frame_equal(whole.drop(columns="seconds"), chunked.drop(columns="seconds"), rtol=0, atol=1e-10)


@pytest.mark.slow
def test_one_tables_projection_runs_on_every_worker_of_the_cluster():
    distributed = pytest.importorskip("distributed")
    config = ipc_profile.Config(**TINY, row_chunk=500)  # 8 chunks per table
    local = sweep.run(ipc_profile.evaluate, config.tasks())
    options = dict(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")  # any free port
    with distributed.LocalCluster(**options) as cluster, distributed.Client(cluster) as client:
        spread = sweep.run(ipc_profile.evaluate, config.tasks(), executor=client.get_executor())
        executed = client.run(lambda dask_worker: dask_worker.state.executed_count)
    columns = ["spectral_radius", "degree", "capacity", "raw", "thresholded", "rank"]
    pd.testing.assert_frame_equal(local[columns], spread[columns], rtol=0, atol=1e-12)
    # 2 sweep tasks and their 16 chunk projections (and the surrogates'), on both workers: no worker waited idle
    assert sum(executed.values()) > 2 * 8 and min(executed.values()) > 2
