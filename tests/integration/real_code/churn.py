"""Memory churn across arena boundaries: deep recursion (Python's frame
stack grows and shrinks in chunks) between bursts of many small objects.
The huge-page arena allocator once handed a freed frame-stack chunk out as
a whole arena, over live objects; this catches it."""


def _depth(n):
    return 0 if n == 0 else 1 + _depth(n - 1)


def churn(rounds):
    total = 0
    keep = []
    for r in range(rounds):
        total += _depth(900)
        batch = [[i, str(i), (i, r)] for i in range(30000)]
        keep.append(batch[::97])
        total += sum(len(x[1]) for x in batch)
        del batch
    return [total, sum(len(k) for k in keep), keep[-1][-1][1]]
