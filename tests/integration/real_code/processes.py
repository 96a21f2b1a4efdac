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


def new_session_child(text):
    """subprocess with start_new_session=True, as servers start helpers."""
    p = subprocess.run(["/bin/sh", "-c", 'echo "$0"; ps -o sid= -p $$ >/dev/null 2>&1; exit 0',
                        text], capture_output=True, text=True, start_new_session=True,
                       check=True)
    return p.stdout.strip()


def setsid_in_child():
    """os.setsid() in a forked child: it leads a session of its own."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.setsid()
        os.write(w, b"1" if os.getsid(0) == os.getpid() == os.getpgid(0) else b"0")
        os._exit(0)
    os.close(w)
    got = os.read(r, 1)
    os.close(r)
    _, status = os.waitpid(pid, 0)
    return [got.decode(), os.waitstatus_to_exitcode(status)]


def double_fork_daemon(text):
    """The classic daemon: fork, setsid, fork again; the grandchild answers
    through a pipe and lives on after the job's own process has gone on."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.setsid()
        if os.fork() > 0:
            os._exit(0)
        os.write(w, text.upper().encode())
        os.close(w)
        # A daemon lets go of its output and stays; whatever runs it takes
        # it down.
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        import time
        time.sleep(2)
        os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    got = b""
    while True:
        chunk = os.read(r, 64)
        if not chunk:
            break
        got += chunk
    os.close(r)
    return got.decode()
