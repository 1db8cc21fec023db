"""What the end-to-end test scripts of tests/cli share: running the tessera binary
(directly or under mpiexec), a temporary directory per case, checks, and the
command line that picks the case:

    SCRIPT.py --tessera BUILD/tessera --mpiexec MPIEXEC [--mpiflags "..."] CASE

A script defines case_<name>() functions and calls e2e.main(globals()).
"""
import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile

import h5py

ARGS = None  # the parsed command line, set by main()
TMP = None   # the case's temporary directory, set by main()


def run(args, np_=0, expect_rc=0, env=None):
    """Runs tessera with args (under mpiexec with np_ ranks when np_ > 0); exits
    the test with the command's output unless its status is expect_rc."""
    cmd = [ARGS.tessera] + [str(a) for a in args]
    if np_ > 0:
        cmd = [ARGS.mpiexec] + shlex.split(ARGS.mpiflags) + ["-n", str(np_)] + cmd
    full_env = None if env is None else dict(os.environ, **env)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=full_env)
    if p.returncode != expect_rc:
        sys.exit(f"FAIL: {' '.join(cmd)}\nexit {p.returncode}, expected {expect_rc}\n"
                 f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}")
    return p


def path(name):
    return os.path.join(TMP, name)


def check(cond, msg):
    if not cond:
        sys.exit("FAIL: " + msg)


def datasets(f):
    """Every dataset of an open h5py file, by name."""
    out = {}
    f.visititems(lambda n, o: out.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset) else None)
    return out


def bad_input(command, name, args, pattern, np_=2, out=None):
    """`tessera command args -o OUT` must fail with exit 2 and one line per rank
    containing pattern, leaving neither OUT nor OUT.partial."""
    out = out or path(name + "_out.h5")
    p = run([command, *args, "-o", out], np_=np_, expect_rc=2)
    # Lines of tessera's (not mpiexec's), without the backend notice of a CUDA
    # build on a machine without a GPU and without notes (masks without
    # --min-overlap).
    lines = [l for l in p.stderr.splitlines()
             if l.startswith("tessera:") and not l.startswith(("tessera: using the CPU", "tessera: note:"))]
    check(len(lines) == np_, f"{name}: expected one line per rank, got:\n{p.stderr}")
    check(all(pattern in l for l in lines), f"{name}: '{pattern}' not in:\n{p.stderr}")
    check(not os.path.exists(out) and not os.path.exists(out + ".partial"), f"{name}: output left behind")


def has_gpu():
    """Whether `tessera info` sees a CUDA device."""
    return re.search(r"cuda devices\s*:\s*none", run(["info"]).stdout) is None


def check_cpu_fallback(command, args, out):
    """Without a GPU, `tessera command args -o OUT` (--backend auto) on 2 ranks
    runs on the CPU, says so in one line, and records backend = cpu."""
    p = run([command, *args, "-o", out], np_=2)
    check(p.stderr.count("using the CPU") == 1, "auto: no one-line notice:\n" + p.stderr)
    with h5py.File(out) as f:
        check(f.attrs["backend"] == "cpu", "backend attribute is not cpu")


def main(cases):
    """Parses the command line and runs cases['case_' + CASE] in a fresh temporary
    directory."""
    global ARGS, TMP
    ap = argparse.ArgumentParser()
    ap.add_argument("--tessera", required=True)
    ap.add_argument("--mpiexec", required=True)
    ap.add_argument("--mpiflags", default="")
    ap.add_argument("case")
    ARGS = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        TMP = tmp
        cases["case_" + ARGS.case]()
    print("ok:", ARGS.case)
