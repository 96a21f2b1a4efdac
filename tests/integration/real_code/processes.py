"""Processes, threads and files, as grading code starts them."""
import multiprocessing
import os
import subprocess
import tempfile
import threading


def echo_subprocess(text):
    return subprocess.run(["/bin/echo", text], capture_output=True, text=True,
                          check=True).stdout


def _square(x):
    return x * x


def pool_map(n):
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2) as pool:
        return pool.map(_square, range(n))


def threads_sum(n_threads):
    totals = [0] * n_threads

    def work(i):
        totals[i] = sum(range(i * 1000))

    ts = [threading.Thread(target=work, args=(i,)) for i in range(n_threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    return totals


def temp_files(lines):
    """Write and read back in the job's own temporary directory."""
    with tempfile.NamedTemporaryFile("w+", suffix=".txt", delete=False) as f:
        f.write("\n".join(lines))
        path = f.name
    with open(path) as f:
        back = f.read().split("\n")
    os.unlink(path)
    same_dir = os.path.dirname(path) == tempfile.gettempdir()
    return [back, same_dir]


def home_is_writable():
    home = os.path.expanduser("~")
    with open(os.path.join(home, "note.txt"), "w") as f:
        f.write("mine")
    with open(os.path.join(home, "note.txt")) as f:
        return [f.read(), home != "/root"]
