"""Peer of bench case square_spec: the Pool half of SPEC.md section 1, verbatim."""
import multiprocessing


def square_number(number):
    return number * number


if __name__ == '__main__':
    with multiprocessing.Pool(processes=4) as pool:
        print(pool.map(square_number, [1, 2, 3, 4]))
