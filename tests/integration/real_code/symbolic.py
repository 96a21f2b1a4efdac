"""sympy as a question generator and grader uses it."""
import sympy


def parse_and_simplify(text):
    expr = sympy.sympify(text)
    return str(sympy.simplify(expr))


def derivative_latex(text, var="x"):
    x = sympy.Symbol(var)
    expr = sympy.sympify(text)
    d = sympy.diff(expr, x)
    return {"derivative": str(d), "latex": sympy.latex(d)}


def solve_quadratic(a, b, c):
    x = sympy.Symbol("x")
    roots = sympy.solve(a * x**2 + b * x + c, x)
    return sorted(str(r) for r in roots)


def grade_equivalent(submitted, expected):
    """True when the student's expression equals the expected one."""
    diff = sympy.simplify(sympy.sympify(submitted) - sympy.sympify(expected))
    return diff == 0
