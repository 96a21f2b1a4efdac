"""pandas: a gradebook."""
import pandas as pd


def _frame():
    return pd.DataFrame({
        "student": ["ann", "bob", "cyd", "dee", "eve", "fay"],
        "section": ["A", "B", "A", "B", "A", "B"],
        "score": [91.5, 78.0, 85.25, 62.0, 99.0, 70.5],
    })


def section_means():
    means = _frame().groupby("section")["score"].mean()
    return {k: float(v) for k, v in means.items()}


def to_html():
    return _frame().sort_values("score", ascending=False).to_html(index=False)


def describe():
    d = _frame()["score"].describe()
    return {k: round(float(v), 9) for k, v in d.items()}
