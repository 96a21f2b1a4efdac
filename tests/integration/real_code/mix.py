"""A job that imports a mix of libraries and touches each (the stress run)."""
import importlib

USES = {
    "sympy": lambda m: str(m.expand((m.Symbol("x") + 1) ** 3)),
    "pandas": lambda m: int(m.DataFrame({"a": [1, 2, 3]})["a"].sum()),
    "pint": lambda m: str(m.UnitRegistry().Quantity(1, "km").to("m")),
    "networkx": lambda m: m.path_graph(5).number_of_edges(),
    "scipy.stats": lambda m: round(float(m.norm.cdf(1.0)), 12),
    "lxml.etree": lambda m: m.fromstring(b"<a><b/></a>")[0].tag,
    "fractions": lambda m: str(m.Fraction(3, 9)),
    "numpy": lambda m: int(m.arange(10).sum()),
}


def use(names):
    return {n: USES[n](importlib.import_module(n)) for n in names}
