"""The smallest job: python function in, string out."""


def greet(name):
    return f"hello {name}"
