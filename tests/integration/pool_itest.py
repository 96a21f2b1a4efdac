"""Jobs through a real trampoline pool without a broker: tests/pool_run,
driven from Python (test_real_code, test_slot_isolation)."""
import os
import struct
import subprocess

import msgpack

POOL_RUN = os.path.join(os.environ.get("REBOUND_BIN_DIR", ""), "..", "tests", "pool_run")


def run_pool(jobs, mode, preload, root, slots=2, extra=()):
    """Run the jobs through tests/pool_run (extra: more of its flags);
    returns (header, {id: result}, pool_run's stderr)."""
    data = b"".join(struct.pack(">I", len(b)) + b
                    for b in (msgpack.packb(j, use_bin_type=True) for j in jobs))
    p = subprocess.run([POOL_RUN, "--mode", mode, "--slots", str(slots), "--code-root", root,
                        "--preload", preload, "--wait-ms", "900000"] + list(extra),
                       input=data, capture_output=True, timeout=1000)
    frames, out = [], p.stdout
    while out:
        (n,) = struct.unpack(">I", out[:4])
        frames.append(msgpack.unpackb(out[4:4 + n], raw=False))
        out = out[4 + n:]
    stderr = p.stderr.decode(errors="replace")
    for bad in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
        if bad in stderr:
            raise AssertionError("sanitizer report from the pool:\n" + stderr[-6000:])
    if p.returncode != 0 or not frames:
        raise AssertionError("pool_run exited %d:\n%s" % (p.returncode, stderr[-4000:]))
    return frames[0], {r["id"]: r for r in frames[1:]}, stderr
