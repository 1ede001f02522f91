"""Peer of the py_square_* bench cases: multiprocessing.Pool(WORKERS).map(square, range(N))
with square from fns.py (the function runjobs runs), the results kept in memory only, as a
Pool.map user's script has them.

usage: python3 pool_map.py N WORKERS
"""
import multiprocessing
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fns import square  # noqa: E402

if __name__ == "__main__":
    n, workers = int(sys.argv[1]), int(sys.argv[2])
    with multiprocessing.Pool(workers) as pool:
        results = pool.map(square, range(n))
    assert len(results) == n and results[-1] == (n - 1) * (n - 1)
