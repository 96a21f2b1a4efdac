"""tree_cpu.py PID...: CPU time, in ms, that each process tree has used so far.

For each PID, prints one number: user + system time of the process and of
every live descendant, plus what their reaped children used (cutime and
cstime in /proc/<pid>/stat). Read before and after a run, the difference is
what the tree spent in between, including the children that came and went
(each is reaped by a process of the tree, which then counts it), but not
the broker's or the client's share. A PID that is gone prints "-".
"""
import os
import sys

TICK_MS = 1000.0 / os.sysconf("SC_CLK_TCK")


def stats():
    """pid -> (ppid, cpu ticks of itself and its reaped children)."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                text = f.read()
        except OSError:
            continue  # ended while we looked
        # The command name may hold spaces and parentheses: split after it.
        rest = text[text.rindex(")") + 2:].split()
        # rest[0] is field 3 (state): ppid is field 4, utime..cstime 14..17.
        out[int(name)] = (int(rest[1]), sum(int(v) for v in rest[11:15]))
    return out


def tree_ms(table, root):
    if root not in table:
        return None
    children = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += table[pid][1]
        todo.extend(children.get(pid, ()))
    return total * TICK_MS


def main(argv):
    table = stats()
    for arg in argv[1:]:
        ms = tree_ms(table, int(arg))
        print("-" if ms is None else "%.0f" % ms)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
