"""Plain Python functions for runjobs' `python = "fns.py:NAME"` functions (SPEC §1)."""


def square_number(number):
    return number * number


def print_number(number):
    print(f"Process {number}: {number}")
    return number
