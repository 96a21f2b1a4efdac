"""A job that uses numpy, which the worker imports once before forking."""

import numpy as np


def describe(values):
    """Mean, standard deviation and extremes of a list of numbers.

    numpy scalars are converted to Python floats so that the result is plain
    data that serialises without numpy.
    """
    a = np.asarray(values, dtype=float)
    return {
        "n": int(a.size),
        "mean": float(a.mean()),
        "std": float(a.std()),
        "min": float(a.min()),
        "max": float(a.max()),
    }


def solve(matrix, rhs):
    """Solve the linear system matrix @ x = rhs."""
    return np.linalg.solve(np.asarray(matrix, dtype=float), np.asarray(rhs, dtype=float)).tolist()
