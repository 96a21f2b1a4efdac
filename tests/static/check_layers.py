"""The call graph between the project's C files has no circle.

Each C file is a node; file A -> file B when A uses a function or global
defined (not static) in B. Within a folder and across folders, no circle
is allowed: every file builds on the ones below it. Also, a file may
include only headers of its own folder or the public header of another
folder (rebound_*.h, and trampoline/ctl.h, the one piece both trampoline
programs share).

    /usr/bin/python3 tests/static/check_layers.py [ROOT]     exit 1 on a circle

Prints the graph's layers (leaves first) and, for a circle, its files with
the names that tie them. A regex reader, not a compiler: good enough for
this code base's style (definitions start at column 0).
"""
import collections
import os
import re
import sys

ROOT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                       os.path.join(os.path.dirname(__file__), "..", ".."))
FOLDERS = ["base", "proto", "consumer", "trampoline"]
SHARED_HEADERS = {"ctl.h"}  # trampoline/ctl.h: shared by pool/ and zygote/


def strip(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    return re.sub(r'"(\\.|[^"\\\n])*"', '""', text)


def sources():
    for top in FOLDERS:
        for d, _, names in os.walk(os.path.join(ROOT, top)):
            for n in sorted(names):
                if n.endswith((".c", ".h")):
                    yield os.path.join(d, n)


DEF_FN = re.compile(r"^(?!static\b)(?!typedef\b)[A-Za-z_][\w \*]*?\b([A-Za-z_]\w*)\s*\([^;{)]*"
                    r"(?:\([^)]*\)[^;{)]*)*\)\s*(?:__attribute__\(\(.*?\)\)\s*)?\{", re.M)
DEF_VAR = re.compile(r"^(?!static\b|extern\b|typedef\b|return\b)[A-Za-z_][\w \*]*?\b([A-Za-z_]\w*)"
                     r"\s*(?:\[[^\]]*\])?\s*(?:=[^;]*)?;", re.M)


def main():
    files = list(sources())
    text = {f: strip(open(f, encoding="utf-8", errors="replace").read()) for f in files}
    defined = {}
    for f in files:
        if not f.endswith(".c"):
            continue
        for rx in (DEF_FN, DEF_VAR):
            for m in rx.finditer(text[f]):
                defined.setdefault(m.group(1), f)
    edges = collections.defaultdict(dict)
    for f in files:
        if not f.endswith(".c"):
            continue
        for name in set(re.findall(r"\b[A-Za-z_]\w*\b", text[f])):
            g = defined.get(name)
            if g and g != f:
                edges[f].setdefault(g, []).append(name)

    problems = []
    # Includes: own folder, or another folder's public header.
    for f in files:
        for inc in re.findall(r'#include\s+"([^"]+)"', open(f, errors="replace").read()):
            base = os.path.basename(inc)
            if os.path.exists(os.path.join(os.path.dirname(f), inc)):
                continue
            if base.startswith("rebound_") or base in SHARED_HEADERS:
                continue
            problems.append("%s includes %s, a private header of another folder"
                            % (os.path.relpath(f, ROOT), inc))

    # Circles: Tarjan's strongly connected components.
    index, low, on, stack, sccs = {}, {}, set(), [], []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            sccs.append(comp)

    sys.setrecursionlimit(10000)
    for f in sorted(f for f in files if f.endswith(".c")):
        if f not in index:
            visit(f)
    for comp in sccs:
        if len(comp) > 1:
            lines = []
            for a in sorted(comp):
                for b, names in sorted(edges[a].items()):
                    if b in comp:
                        lines.append("    %s -> %s (%s)" % (os.path.relpath(a, ROOT),
                                                           os.path.relpath(b, ROOT),
                                                           ", ".join(sorted(set(names))[:6])))
            problems.append("a circle of %d files:\n%s" % (len(comp), "\n".join(lines)))

    nodes = sorted(f for f in files if f.endswith(".c"))
    print("check_layers: %d C files, %d uses between files"
          % (len(nodes), sum(len(v) for v in edges.values())))
    for p in problems:
        print("check_layers: " + p)
    if problems:
        return 1
    print("check_layers: no circle; every include is of the file's own folder or a public header")
    return 0


if __name__ == "__main__":
    sys.exit(main())
