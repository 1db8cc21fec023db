#!/usr/bin/env python3
"""The jobs/ scripts submitted to a real SLURM (the cluster of cluster.py), run by
ctest with the label `slurm`:

    slurm_e2e.py --tessera BUILD/tessera --jobs SRC/jobs --work DIR CASE

SLURM_CONF must name the test cluster's slurm.conf. Each case simulates a cube,
fits it with one plain process as the reference, submits the scripts, waits for
the jobs, and compares every dataset of their output with the reference, bit for
bit. Needs h5py and numpy.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import time

import h5py
import numpy as np

ARGS = None
WORK = None
TIMEOUT = 300  # seconds for a job to finish


def check(cond, msg):
    if not cond:
        sys.exit("FAIL: " + msg)


def sh(cmd, env=None, expect_rc=0):
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env, cwd=WORK,
                       timeout=600)
    if p.returncode != expect_rc:
        sys.exit(f"FAIL: {' '.join(map(str, cmd))}\nexit {p.returncode}, expected {expect_rc}\n"
                 f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}")
    return p


def job_env(**extra):
    """The submitting shell's environment: sbatch hands it to the jobs."""
    env = dict(os.environ, TESSERA=ARGS.tessera, **{k: str(v) for k, v in extra.items()})
    return env


def reference(cube, fit_args):
    """The plain single-process fit that every job's output must equal."""
    out = os.path.join(WORK, "plain.h5")
    sh([ARGS.tessera, "fit", cube, "-o", out, *fit_args, "--quiet"])
    return out


def simulate(name, size, peaks):
    out = os.path.join(WORK, name)
    sh([ARGS.tessera, "simulate", "odmr", "-o", out, "--size", size, "--peaks", peaks, "--seed", 11])
    return out


def job_states(job):
    """{task id or job id: (JobState, ExitCode)} of a job or of every task of an array."""
    p = sh(["scontrol", "-o", "show", "job", job])
    out = {}
    for line in p.stdout.splitlines():
        f = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
        key = f.get("ArrayTaskId") or f.get("JobId")
        out[key] = (f.get("JobState"), f.get("ExitCode"))
    return out


def wait(*ids):
    deadline = time.time() + TIMEOUT
    while True:
        p = subprocess.run(["squeue", "-h", "-o", "%i %T %r", "-j", ",".join(ids)],
                           capture_output=True, text=True)
        if p.returncode == 0 and not p.stdout.strip():
            return
        if time.time() > deadline:
            sys.exit(f"FAIL: jobs {ids} still in the queue after {TIMEOUT} s:\n{p.stdout}{p.stderr}\n"
                     + logs())
        time.sleep(0.5)


def logs():
    text = ""
    for name in sorted(os.listdir(WORK)):
        if name.endswith(".log"):
            with open(os.path.join(WORK, name), errors="replace") as f:
                text += f"--- {name}\n{f.read()[-3000:]}"
    return text


def completed(job, n_tasks=None):
    states = job_states(job)
    check(all(s == ("COMPLETED", "0:0") for s in states.values()),
          f"job {job} did not complete: {states}\n" + logs())
    if n_tasks is not None:
        check(len(states) == n_tasks, f"job {job}: {len(states)} tasks, expected {n_tasks}: {states}")


def datasets(f):
    out = {}
    f.visititems(lambda n, o: out.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset) else None)
    return out


def same_as_reference(out, ref, what):
    """Every dataset of `out` equals the reference's: names, types, shapes, bytes."""
    check(os.path.exists(out), f"{what}: no output {out}\n" + logs())
    with h5py.File(out) as a, h5py.File(ref) as b:
        da, db = datasets(a), datasets(b)
        check(sorted(da) == sorted(db), f"{what}: datasets {sorted(da)} vs {sorted(db)}")
        for k in db:
            check(da[k].dtype == db[k].dtype and da[k].shape == db[k].shape, f"{what}: /{k} type or shape")
            check(da[k].tobytes() == db[k].tobytes(), f"{what}: /{k} differs from the plain run")
        check(int(a.attrs["complete"]) == 1, f"{what}: not marked complete")
        check(a.attrs["fingerprint"] == b.attrs["fingerprint"], f"{what}: fingerprint differs")
        return dict(a.attrs)


def log_of(pattern):
    names = [n for n in os.listdir(WORK) if re.fullmatch(pattern, n)]
    check(len(names) == 1, f"expected one log matching {pattern}, found {names}:\n{os.listdir(WORK)}")
    with open(os.path.join(WORK, names[0]), errors="replace") as f:
        return f.read()


# ---- cases ---------------------------------------------------------------------

FIT = ["--model", "lorentzian", "--peaks", "2"]


def case_array_merge():
    """submit_fit_array.sh: an array of 3 parts of 2 ranks each (mpirun inside
    the array tasks) and a merge that depends on it, which then deletes the parts."""
    cube = simulate("cube.h5", "40x24", 2)
    ref = reference(cube, FIT)
    env = job_env(TESSERA_INPUT=cube, TESSERA_OUTPUT=os.path.join(WORK, "fit.h5"),
                  TESSERA_FIT_ARGS=" ".join(FIT), TESSERA_KEEP_PARTS=0)
    p = sh([os.path.join(ARGS.jobs, "submit_fit_array.sh"), 3, "-n", 2], env=env)
    m = re.search(r"array (\d+) \(3 parts\), merge (\d+)", p.stdout)
    check(m is not None, "submit_fit_array.sh printed no job ids:\n" + p.stdout + p.stderr)
    array, merge = m.groups()
    wait(array, merge)
    completed(array, 3)
    completed(merge)
    for i in (1, 2, 3):
        check(f"part {i}/3" in log_of(rf"tessera-part-{array}_{i}\.log"), f"log of task {i}")
        check("2 rank(s)" in log_of(rf"tessera-part-{array}_{i}\.log"), f"task {i} did not run 2 ranks")
    attrs = same_as_reference(os.path.join(WORK, "fit.h5"), ref, "array + merge")
    check(len(attrs["part_command_lines"]) == 3, "merged file does not list 3 parts")
    check(int(attrs["ranks"]) == 6, f"merged ranks {attrs['ranks']}: not 3 parts of 2 ranks")
    check(not os.path.exists(os.path.join(WORK, "fit.parts")), "TESSERA_KEEP_PARTS=0 kept the parts")
    print(f"array {array} (3 parts of 2 ranks) and merge {merge}: merged output bit-identical to the plain run")


def case_xcorr_array_merge():
    """submit_xcorr_array.sh: an array of 3 xcorr parts (2 ranks each) and the
    dependent merge; the merged peaks equal a plain single-process run."""
    src = os.path.join(WORK, "pairs.h5")
    sh([ARGS.tessera, "simulate", "xcorr", "-o", src, "--size", "64x64", "--images", 6, "--pairs", 20,
        "--seed", 2, "--force"])
    ref = os.path.join(WORK, "plain_peaks.h5")
    ref_csv, out_csv = os.path.join(WORK, "plain_peaks.csv"), os.path.join(WORK, "peaks.csv")
    sh([ARGS.tessera, "xcorr", src, "-o", ref, "--subpixel", "--quiet", "--force", "--csv", ref_csv])
    out = os.path.join(WORK, "peaks.h5")
    env = job_env(TESSERA_INPUT=src, TESSERA_OUTPUT=out, TESSERA_XCORR_ARGS="--subpixel --threads 1",
                  TESSERA_KEEP_PARTS=0, TESSERA_MERGE_ARGS=f"--csv {out_csv} --force")
    p = sh([os.path.join(ARGS.jobs, "submit_xcorr_array.sh"), 3, "-n", 2], env=env)
    m = re.search(r"array (\d+) \(3 parts\), merge (\d+)", p.stdout)
    check(m is not None, "submit_xcorr_array.sh printed no job ids:\n" + p.stdout + p.stderr)
    array, merge = m.groups()
    wait(array, merge)
    completed(array, 3)
    completed(merge)
    for i in (1, 2, 3):
        check(f"part {i}/3" in log_of(rf"tessera-xcorr-part-{array}_{i}\.log"), f"log of task {i}")
    attrs = same_as_reference(out, ref, "xcorr array + merge")
    check(len(attrs["part_command_lines"]) == 3, "merged file does not list 3 parts")
    with open(ref_csv) as a, open(out_csv) as b:
        check(a.read() == b.read(), "the merge's --csv table differs from the plain run's")
    print(f"xcorr array {array} (3 parts of 2 ranks) and merge {merge} (with --csv): "
          "bit-identical to the plain run")


def case_mpirun_batch():
    """fit_node.sbatch with 2 tasks: mpirun -np 2 inside the batch job."""
    cube = simulate("cube.h5", "30x20", 2)
    ref = reference(cube, FIT)
    env = job_env(TESSERA_INPUT=cube, TESSERA_OUTPUT=os.path.join(WORK, "fit.h5"),
                  TESSERA_FIT_ARGS=" ".join(FIT))
    job = sh(["sbatch", "--parsable", "-n", 2, os.path.join(ARGS.jobs, "fit_node.sbatch")],
             env=env).stdout.strip().split(";")[0]
    wait(job)
    completed(job)
    attrs = same_as_reference(os.path.join(WORK, "fit.h5"), ref, "mpirun in a batch job")
    check(int(attrs["ranks"]) == 2, f"ran with {attrs['ranks']} ranks, not 2")
    check("2 rank(s)" in log_of(rf"tessera-fit-{job}\.log"), "log does not report 2 ranks")
    print(f"job {job}: mpirun -np 2 inside sbatch, output bit-identical to the plain run")


def case_srun_batch():
    """fit_nodes.sbatch with 2 tasks launched by srun (--mpi=pmix)."""
    cube = simulate("cube.h5", "30x20", 2)
    ref = reference(cube, FIT)
    env = job_env(TESSERA_INPUT=cube, TESSERA_OUTPUT=os.path.join(WORK, "fit.h5"),
                  TESSERA_FIT_ARGS=" ".join(FIT))
    job = sh(["sbatch", "--parsable", "-n", 2, os.path.join(ARGS.jobs, "fit_nodes.sbatch")],
             env=env).stdout.strip().split(";")[0]
    wait(job)
    completed(job)
    attrs = same_as_reference(os.path.join(WORK, "fit.h5"), ref, "srun in a batch job")
    check(int(attrs["ranks"]) == 2, f"ran with {attrs['ranks']} ranks, not 2")
    print(f"job {job}: srun -n 2 inside sbatch, output bit-identical to the plain run")


def case_kill_resume():
    """An array of 4 parts, one task at a time, cancelled while part 2 is being
    written; the same submission again skips part 1, redoes the rest and merges
    a file identical to the plain run."""
    fit = ["--model", "lorentzian", "--peaks", "8", "--threads", "1"]
    cube = simulate("cube.h5", "128x192", 8)
    ref = reference(cube, fit)
    out = os.path.join(WORK, "fit.h5")
    parts = os.path.join(WORK, "fit.parts")
    env = job_env(TESSERA_INPUT=cube, TESSERA_OUTPUT=out, TESSERA_FIT_ARGS=" ".join(fit),
                  TESSERA_ARRAY_LIMIT=1)
    submit = [os.path.join(ARGS.jobs, "submit_fit_array.sh"), 4]
    array, merge = re.search(r"array (\d+) \(4 parts\), merge (\d+)", sh(submit, env=env).stdout).groups()
    part = lambda i: os.path.join(parts, f"part-{i}-of-4.h5")
    deadline = time.time() + TIMEOUT
    while not (os.path.exists(part(1)) and os.path.exists(part(2) + ".partial")):
        check(time.time() < deadline, "part 2 never started:\n" + logs())
        check(not os.path.exists(part(2)), "part 2 finished before it could be cancelled")
        time.sleep(0.02)
    sh(["scancel", array])
    wait(array, merge)
    check(not os.path.exists(part(2)) and not os.path.exists(out),
          "cancelling left a complete part 2 or a merged file")
    check(os.path.exists(part(2) + ".partial"), "the cancelled part left no partial file (killed too late?)")
    states = job_states(merge)
    check(all(s[0] != "COMPLETED" for s in states.values()), f"merge ran after the cancel: {states}")
    first = os.stat(part(1))
    print(f"array {array} cancelled during part 2: part 1 complete, part 2 partial, merge {merge} {states}")

    array2, merge2 = re.search(r"array (\d+) \(4 parts\), merge (\d+)", sh(submit, env=env).stdout).groups()
    wait(array2, merge2)
    completed(array2, 4)
    completed(merge2)
    check("skipped" in log_of(rf"tessera-part-{array2}_1\.log"), "part 1 was not skipped on the rerun:\n" + logs())
    for i in (2, 3, 4):
        check("skipped" not in log_of(rf"tessera-part-{array2}_{i}\.log"), f"part {i} was skipped")
    again = os.stat(part(1))
    check((again.st_ino, again.st_mtime_ns) == (first.st_ino, first.st_mtime_ns), "part 1 was rewritten")
    check(not any(n.endswith(".partial") for n in os.listdir(parts)), "a partial file is left")
    same_as_reference(out, ref, "killed and resumed")
    print(f"rerun as array {array2} + merge {merge2}: part 1 skipped, merged output bit-identical")


def main():
    global ARGS, WORK
    ap = argparse.ArgumentParser()
    ap.add_argument("--tessera", required=True)
    ap.add_argument("--jobs", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("case")
    ARGS = ap.parse_args()
    check("SLURM_CONF" in os.environ, "SLURM_CONF is not set (the test cluster's slurm.conf)")
    check(subprocess.run(["sinfo", "-h"], capture_output=True).returncode == 0,
          "the test cluster does not answer (sinfo failed): did slurm_cluster_start pass?")
    WORK = os.path.abspath(os.path.join(ARGS.work, ARGS.case))
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    globals()["case_" + ARGS.case]()
    print("ok:", ARGS.case)


if __name__ == "__main__":
    main()
