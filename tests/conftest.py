"""Test configuration: one BLAS thread per process (small eigen/SVD problems are faster and far steadier so)."""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
