"""numpy's random numbers with a seed."""
import numpy as np


def seeded_draws(seed):
    rng = np.random.default_rng(seed)
    legacy = np.random.RandomState(seed)
    return {"pcg64": rng.normal(size=4).tolist(), "mt19937": legacy.randint(0, 1000, 5).tolist()}


def linear_algebra():
    a = np.array([[4.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 4.0]])
    return {"det": round(float(np.linalg.det(a)), 9),
            "solve": [round(float(v), 12) for v in np.linalg.solve(a, [11.0, -16.0, 17.0])]}
