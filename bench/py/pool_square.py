"""Peer of bench case square_1m: multiprocessing.Pool(WORKERS).map(square, range(N)),
then json.dump of the results to OUT.

usage: python3 pool_square.py N WORKERS OUT
"""
import json
import multiprocessing
import sys


def square(number):
    return number * number


if __name__ == "__main__":
    n, workers, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    with multiprocessing.Pool(workers) as pool:
        results = pool.map(square, range(n))
    with open(out, "w") as f:
        json.dump(results, f)
