"""scipy: fitting and statistics."""
import numpy as np
from scipy import optimize, stats


def minimize_rosenbrock():
    res = optimize.minimize(optimize.rosen, [1.3, 0.7, 0.8, 1.9, 1.2], method="Nelder-Mead",
                            options={"xatol": 1e-8, "maxiter": 4000})
    return {"x": [round(float(v), 6) for v in res.x], "success": bool(res.success)}


def t_test():
    a = np.array([5.1, 4.9, 5.6, 5.8, 6.0, 5.2, 5.5])
    b = np.array([4.2, 4.8, 4.9, 5.0, 4.4, 4.7, 4.6])
    r = stats.ttest_ind(a, b)
    return [float(r.statistic), float(r.pvalue)]


def normal_quantiles():
    return [float(stats.norm.ppf(q)) for q in (0.025, 0.5, 0.975)]
