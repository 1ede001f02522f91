"""The floor of a process per item in Python, as a new user writes it:
multiprocessing.Pool(PAR) mapping subprocess.run([PROG, *ARGS, str(item)]) over 1..N
(with "capture": capture_output=True, the total of stdout bytes printed).

usage: python3 pool_subprocess.py N PAR none|capture PROG [ARGS...]
"""
import multiprocessing
import subprocess
import sys


def run(job):
    argv, capture, item = job
    done = subprocess.run([*argv, str(item)], capture_output=capture, stdin=subprocess.DEVNULL)
    return done.returncode, len(done.stdout) if capture else 0


if __name__ == "__main__":
    n, par, capture, argv = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "capture", sys.argv[4:]
    with multiprocessing.Pool(par) as pool:
        results = pool.map(run, [(argv, capture, i) for i in range(1, n + 1)])
    if capture:
        print(f"{sum(b for _, b in results)} bytes captured")
    failed = sum(1 for code, _ in results if code != 0)
    if failed:
        sys.exit(f"{failed} items failed")
