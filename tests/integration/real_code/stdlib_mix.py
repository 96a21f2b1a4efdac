"""The standard library as grading code uses it."""
import decimal
import fractions
import json
import re

PATTERNS = [r"^\d+$", r"[A-Z][a-z]+", r"(\w+)@(\w+)\.com", r"\b\d{3}-\d{4}\b", r"x\^(\d+)",
            r"(?i)hello", r"[aeiou]{2,}", r"\s+$", r"^(?:\+|-)?\d+(?:\.\d+)?$", r"(a|b)*c"]


def fractions_sum(n):
    return str(sum(fractions.Fraction(1, k) for k in range(1, n + 1)))


def decimal_division():
    decimal.getcontext().prec = 40
    return str(decimal.Decimal(1) / decimal.Decimal(7))


def regex_matches(texts):
    return {p: [bool(re.search(p, t)) for t in texts] for p in PATTERNS}


def json_roundtrip():
    data = {"a": [1, 2, {"b": [3.5, None, True]}], "c": {"d": {"e": "f" * 10}}, "g": []}
    text = json.dumps(data, sort_keys=True)
    return [text, json.loads(text) == data]
