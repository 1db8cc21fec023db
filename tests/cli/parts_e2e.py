#!/usr/bin/env python3
"""End-to-end tests of `tessera fit --part`, `--resume` and `tessera merge` (run by
ctest, like fit_e2e.py):

    parts_e2e.py --tessera BUILD/tessera --mpiexec MPIEXEC [--mpiflags "..."] CASE

The reference is always a plain run of the same cube: merged parts must equal
it in every dataset, bit for bit. Needs h5py and numpy.
"""
import os

import h5py
import numpy as np

import e2e
from e2e import check, datasets, path, run


# Attributes a merged file may hold with other values than a plain run's: the
# merge's own command line, the ranks and timings added up over the parts.
MAY_DIFFER = {"command_line", "ranks", "seconds_read_fit_write", "seconds_total"}
ONLY_MERGED = {"part_command_lines"}


def simulate(name, size, peaks=2):
    run(["simulate", "odmr", "-o", path(name), "--size", size, "--peaks", peaks, "--seed", 5])
    return path(name)


def same_datasets(a_path, b_path, what):
    with h5py.File(a_path) as a, h5py.File(b_path) as b:
        da, db = datasets(a), datasets(b)
        check(sorted(da) == sorted(db), f"{what}: datasets {sorted(da)} vs {sorted(db)}")
        for k in da:
            check(da[k].dtype == db[k].dtype, f"{what}: /{k} is {da[k].dtype}, not {db[k].dtype}")
            check(da[k].shape == db[k].shape, f"{what}: /{k} is {da[k].shape}, not {db[k].shape}")
            check(da[k].tobytes() == db[k].tobytes(), f"{what}: /{k} differs")


def same_attributes(merged, plain, what):
    with h5py.File(merged) as m, h5py.File(plain) as p:
        check(set(m.attrs) == set(p.attrs) | ONLY_MERGED,
              f"{what}: attributes {sorted(set(m.attrs) ^ set(p.attrs))} differ in presence")
        for k in p.attrs:
            if k not in MAY_DIFFER:
                check(np.array_equal(np.asarray(m.attrs[k]), np.asarray(p.attrs[k])),
                      f"{what}: attribute {k}: {m.attrs[k]!r} vs {p.attrs[k]!r}")
        for g in ("derived",):
            if g in p:
                check(dict(m[g].attrs) == dict(p[g].attrs), f"{what}: /{g} attributes differ")


def fit_parts(cube, n, extra, ranks, prefix):
    """Fits parts 1..n of `cube`, part i with ranks[i % len(ranks)] ranks."""
    out = []
    for i in range(1, n + 1):
        name = path(f"{prefix}_{i}of{n}.h5")
        run(["fit", cube, "-o", name, "--part", f"{i}/{n}", "--quiet", *extra], np_=ranks[(i - 1) % len(ranks)])
        out.append(name)
    return out


def merge_ok(parts, out, np_=0):
    run(["merge", *parts, "-o", out, "--quiet"], np_=np_)
    return out


# ---- cases ---------------------------------------------------------------------

def case_merge_bit_identical():
    """Parts 1/3, 2/3, 3/3 with 1, 2 and 3 ranks, merged (in another order, with
    2 ranks): every dataset equals a plain one-rank run; so do 7 parts of 5 rows
    (two of them empty), 1/1, and parts with chunks, ROI, binning and a mask."""
    cube = simulate("c.h5", "14x20", 8)
    extra = ["--peaks", 8]
    run(["fit", cube, "-o", path("plain.h5"), "--quiet", *extra])
    parts = fit_parts(cube, 3, extra, [1, 2, 3], "p")
    with h5py.File(parts[1]) as f:
        check(tuple(f.attrs["part_rows"]) == (5, 10) and f["state"].shape == (5, 20),
              f"part 2/3 holds rows {f.attrs['part_rows']}, shape {f['state'].shape}; expected 5:10, (5, 20)")
        check(int(f.attrs["part_index"]) == 2 and int(f.attrs["part_count"]) == 3, "part 2/3 attributes")
    merged = merge_ok([parts[2], parts[0], parts[1]], path("merged.h5"), np_=2)
    same_datasets(merged, path("plain.h5"), "3 parts")
    same_attributes(merged, path("plain.h5"), "3 parts")
    with h5py.File(merged) as m, h5py.File(parts[0]) as a, h5py.File(parts[1]) as b, h5py.File(parts[2]) as c:
        check(int(m.attrs["ranks"]) == 6, f"merged ranks {m.attrs['ranks']} is not 1 + 2 + 3")
        check(list(m.attrs["part_command_lines"]) == [x.attrs["command_line"] for x in (a, b, c)],
              "part_command_lines are not the parts' command lines in part order")
        total = sum(np.asarray(x.attrs["state_counts"]) for x in (a, b, c))
        check(np.array_equal(m.attrs["state_counts"], total), "state_counts are not the parts' sum")
    print("3 parts with 1, 2, 3 ranks, merged with 2 ranks: bit-identical to the plain run")

    small = simulate("s.h5", "5x6")
    run(["fit", small, "-o", path("s_plain.h5"), "--quiet"], np_=3)
    parts = fit_parts(small, 7, [], [1, 2], "s")
    with h5py.File(parts[6]) as f:
        check(f["state"].shape == (0, 6), f"part 7/7 of 5 rows has shape {f['state'].shape}")
    same_datasets(merge_ok(parts, path("s_merged.h5")), path("s_plain.h5"), "7 parts of 5 rows")
    run(["fit", small, "-o", path("s_whole.h5"), "--part", "1/1", "--quiet"])
    same_datasets(path("s_whole.h5"), path("s_plain.h5"), "--part 1/1")
    print("7 parts of 5 rows (2 empty) and --part 1/1: bit-identical")

    with h5py.File(path("m.h5"), "w") as f, h5py.File(cube) as c:
        for k in ("data", "sweep"):
            f[k] = c[k][()]
        mask = np.zeros((14, 20), np.uint8)
        mask[3:5, 7:9] = 1
        f["mask"] = mask
    extra = ["--peaks", 8, "--roi", "1:14,2:20", "--bin", 2, "--mask", "/mask", "--memory-budget", "1K"]
    run(["fit", path("m.h5"), "-o", path("m_plain.h5"), "--quiet", *extra], np_=2)
    parts = fit_parts(path("m.h5"), 4, extra, [2, 1], "m")
    same_datasets(merge_ok(parts, path("m_merged.h5")), path("m_plain.h5"), "ROI, bin, mask, chunks")
    with h5py.File(path("m_merged.h5")) as f:
        check(np.sum(f["state"][()] == 4) > 0, "the mask masked nothing")
    print("4 parts with --roi, --bin, --mask and 1K chunks: bit-identical")


def case_part_auto():
    """--part auto takes the task of a SLURM array 1-N; without --part the array
    environment is ignored (the whole image)."""
    cube = simulate("a.h5", "9x8")
    run(["fit", cube, "-o", path("explicit.h5"), "--part", "2/3", "--quiet"])
    env = {"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "3", "SLURM_ARRAY_TASK_MIN": "1",
           "SLURM_ARRAY_TASK_MAX": "3", "SLURM_ARRAY_JOB_ID": "77"}
    run(["fit", cube, "-o", path("auto.h5"), "--part", "auto", "--quiet"], env=env)
    same_datasets(path("auto.h5"), path("explicit.h5"), "--part auto as task 2 of 1-3")
    run(["fit", cube, "-o", path("whole_env.h5"), "--quiet"], env=env)
    run(["fit", cube, "-o", path("whole.h5"), "--quiet"])
    same_datasets(path("whole_env.h5"), path("whole.h5"), "no --part inside an array")
    with h5py.File(path("whole_env.h5")) as f:
        check(int(f.attrs["part_count"]) == 1, "a plain run in an array environment was cut into parts")
    zero_based = dict(env, SLURM_ARRAY_TASK_ID="1", SLURM_ARRAY_TASK_MIN="0", SLURM_ARRAY_TASK_MAX="2")
    bad_fit("auto_zero_based", [cube, "--part", "auto"], "--array=1-N", env=zero_based)
    bad_fit("auto_outside_array", [cube, "--part", "auto"], "SLURM_ARRAY_TASK_ID")


def bad(name, args, pattern, np_=2, env=None, out=None):
    """Exit 2, one line per rank containing `pattern`, and no output left behind."""
    out = out or path(name + "_out.h5")
    existed = os.path.exists(out)
    before = os.stat(out).st_mtime_ns if existed else None
    p = run([*args, "-o", out], np_=np_, expect_rc=2, env=env)
    lines = [l for l in p.stderr.splitlines() if l.startswith("tessera:")]
    check(len(lines) == max(np_, 1), f"{name}: expected one line per rank, got:\n{p.stderr}")
    check(all(pattern in l for l in lines), f"{name}: '{pattern}' not in:\n{p.stderr}")
    check(not os.path.exists(out + ".partial"), f"{name}: partial output left behind")
    if existed:
        check(os.stat(out).st_mtime_ns == before, f"{name}: the existing output was touched")
    else:
        check(not os.path.exists(out), f"{name}: output written")
    return p


def bad_fit(name, args, pattern, np_=2, env=None, out=None):
    return bad(name, ["fit", *args, "--quiet"], pattern, np_, env, out)


def case_bad_parts_and_merges():
    cube = simulate("b.h5", "12x10")
    parts = fit_parts(cube, 3, [], [1], "b")
    halves = fit_parts(cube, 2, [], [1], "h")
    tol = path("b_tol_2of3.h5")
    run(["fit", cube, "-o", tol, "--part", "2/3", "--tol", "1e-5", "--quiet"])
    for text in ("0/3", "4/3", "3", "x/3", "1/0", "-1/3"):
        bad_fit("part_" + text.replace("/", "_"), [cube, "--part", text], "--part")
    bad("overlap", ["merge", parts[0], parts[1], parts[1], parts[2]], "given twice")
    bad("gap", ["merge", parts[0], parts[2]], "part 2/3 (rows 4:8) is missing")
    bad("mixed_counts", ["merge", parts[0], halves[1]], "part 2/2")
    bad("fingerprint", ["merge", parts[0], tol, parts[2]], "different inputs or options (tol=")
    bad("not_a_part", ["merge", cube], "not a tessera output with part attributes")
    bad("missing_file", ["merge", parts[0], path("nope.h5"), parts[2]], "no such file")
    unfinished = path("b_unfinished.h5")
    run(["fit", cube, "-o", unfinished, "--part", "3/3", "--quiet"])
    with h5py.File(unfinished, "a") as f:
        del f.attrs["complete"]
    bad("incomplete", ["merge", parts[0], parts[1], unfinished], "not a complete output")
    changed_input = path("b2.h5")
    run(["simulate", "odmr", "-o", changed_input, "--size", "12x10", "--peaks", 2, "--seed", 6])
    other = path("b2_part3.h5")
    run(["fit", changed_input, "-o", other, "--part", "3/3", "--quiet"])
    bad("other_input", ["merge", parts[0], parts[1], other], "different inputs or options (input=")
    exists = path("exists.h5")
    merge_ok(parts, exists)
    bad("existing_output", ["merge", *parts], "exists already", out=exists)
    bad("output_is_a_part", ["merge", *parts, "--force"], "the output is one of the parts", out=parts[0])
    run(["merge", *parts, "-o", exists, "--force", "--quiet"], np_=2)
    print("bad --part values and merges: exit 2, one line per rank, nothing written")


def case_resume():
    """--resume skips a complete, matching output with one line; refuses a
    different or unfinished one (replaced with --force); a stale partial file
    does not count."""
    cube = simulate("r.h5", "10x8")
    part = path("r_2of3.h5")
    run(["fit", cube, "-o", part, "--part", "2/3", "--quiet"])
    before = os.stat(part)
    p = run(["fit", cube, "-o", part, "--part", "2/3", "--resume", "--quiet"], np_=2)
    lines = [l for l in p.stderr.splitlines() if l.startswith("tessera:")]
    check(len(lines) == 1 and "skipped" in lines[0] and "part 2/3" in lines[0],
          f"no one-line notice of the skip:\n{p.stderr}")
    check(os.stat(part).st_mtime_ns == before.st_mtime_ns, "a complete part was rewritten")
    # Same file name, other options or another part: not this job's output.
    bad_fit("resume_other_tol", [cube, "--part", "2/3", "--resume", "--tol", "1e-5"],
            "not a complete output of this job (different input or options: tol=", out=part)
    bad_fit("resume_other_part", [cube, "--part", "1/3", "--resume"], "it is part 2/3", out=part)
    with h5py.File(part, "a") as f:
        del f.attrs["complete"]
    bad_fit("resume_unfinished", [cube, "--part", "2/3", "--resume"], "no 'complete' attribute", out=part)
    run(["fit", cube, "-o", part, "--part", "2/3", "--resume", "--force", "--quiet"], np_=2)
    with h5py.File(part) as f:
        check(int(f.attrs["complete"]) == 1, "--resume --force did not redo the unfinished part")
    run(["fit", cube, "-o", path("r_ref.h5"), "--part", "2/3", "--quiet"])
    same_datasets(part, path("r_ref.h5"), "redone part")
    # A killed run leaves NAME.partial only: the part is done again.
    fresh = path("r_3of3.h5")
    with open(fresh + ".partial", "wb") as f:
        f.write(b"half a file")
    p = run(["fit", cube, "-o", fresh, "--part", "3/3", "--resume"])
    check("skipped" not in p.stderr and os.path.exists(fresh) and not os.path.exists(fresh + ".partial"),
          f"a stale partial file was not replaced:\n{p.stderr}")
    # Whole runs and merges resume too.
    run(["fit", cube, "-o", path("r_whole.h5"), "--quiet"])
    p = run(["fit", cube, "-o", path("r_whole.h5"), "--resume"])
    check("skipped" in p.stderr, "a complete whole output was not skipped")
    parts = [path("r_1of3.h5"), part, fresh]
    run(["fit", cube, "-o", parts[0], "--part", "1/3", "--quiet"])
    merge_ok(parts, path("r_merged.h5"))
    p = run(["merge", *parts, "-o", path("r_merged.h5"), "--resume"], np_=2)
    check(p.stderr.count("skipped") == 1, f"merge --resume did not skip once:\n{p.stderr}")
    same_datasets(path("r_merged.h5"), path("r_whole.h5"), "resumed parts merged")
    print("resume: skipped when complete and matching, refused otherwise, redone with --force")


if __name__ == "__main__":
    e2e.main(globals())
