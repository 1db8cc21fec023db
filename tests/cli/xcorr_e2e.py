#!/usr/bin/env python3
"""End-to-end tests of `tessera simulate xcorr` and `tessera xcorr` (run by ctest).

    xcorr_e2e.py --tessera BUILD/tessera --mpiexec MPIEXEC [--mpiflags "..."] CASE

Each CASE is one ctest test. The reference is a brute-force zero-normalised
cross-correlation in double written here with numpy (the zero-padded image,
every placement summed directly), independent of the C++ code.
"""
import os

import h5py
import numpy as np

import e2e
from e2e import check, datasets, path, run


def brute_map(img, tpl, eps=1e-6):
    """Full-mode ZNCC by direct sums over the zero-padded image, in double."""
    img = img.astype(np.float64)
    tpl = tpl.astype(np.float64)
    H, W = img.shape
    h, w = tpl.shape
    pad = np.zeros((H + 2 * (h - 1), W + 2 * (w - 1)))
    pad[h - 1:h - 1 + H, w - 1:w - 1 + W] = img
    A = h * w
    tbar = tpl.mean()
    ssdt = ((tpl - tbar) ** 2).sum()
    R = np.zeros((H + h - 1, W + w - 1))
    for y in range(H + h - 1):
        for x in range(W + w - 1):
            win = pad[y:y + h, x:x + w]
            s1, s2 = win.sum(), (win * win).sum()
            den = (s2 - s1 * s1 / A) * ssdt
            R[y, x] = 0.0 if den <= eps else ((win * tpl).sum() - s1 * tbar) / np.sqrt(den)
    return R


def region(H, W, h, w, crop=(0, 0), valid=False):
    y0, y1 = crop[0], H + h - 2 - crop[0]
    x0, x1 = crop[1], W + w - 2 - crop[1]
    if valid:
        y0, y1, x0, x1 = max(y0, h - 1), min(y1, H - 1), max(x0, w - 1), min(x1, W - 1)
    return y0, y1, x0, x1


def write_set(name, imgs, tpls, pairs, **extra):
    with h5py.File(path(name), "w") as f:
        f["images"] = imgs
        f["templates"] = tpls
        f["pairs"] = np.asarray(pairs, np.int64)
        for k, v in extra.items():
            f[k] = v
    return path(name)


def random_set(rng, n=3, k=4, shape=(19, 23), tshape=(5, 7), p=10):
    imgs = rng.random((n,) + shape).astype(np.float32) * 10 + 50
    tpls = rng.random((k,) + tshape).astype(np.float32)
    # Some templates cut from images, so there are clear matches.
    tpls[0] = imgs[1, 4:4 + tshape[0], 6:6 + tshape[1]]
    tpls[2] = imgs[2, 10:10 + tshape[0], 3:3 + tshape[1]]
    pairs = [[rng.integers(n), rng.integers(k)] for _ in range(p - 2)] + [[1, 0], [2, 2]]
    return imgs, tpls, np.array(pairs)


def bad_input_(name, args, pattern, np_=2, out=None):
    e2e.bad_input("xcorr", name, args, pattern, np_=np_, out=out)


# ---- cases ---------------------------------------------------------------------

def case_matches_brute_force():
    """Small random sets: coordinates equal and peaks within 1e-6 of a numpy brute
    force, in full mode, valid mode and with an asymmetric crop; --csv and
    --subpixel agree with the HDF5 output."""
    rng = np.random.default_rng(11)
    imgs, tpls, pairs = random_set(rng)
    src = write_set("bf.h5", imgs, tpls, pairs)
    maps = {}
    for opts, crop, valid in (([], (0, 0), False), (["--mode", "valid"], (0, 0), True),
                              (["--crop", "3,1"], (3, 1), False)):
        out = path("bf_out.h5")
        run(["xcorr", src, "-o", out, "--force", "--quiet", "--subpixel", "--csv", path("bf.csv"), *opts])
        with h5py.File(out) as f:
            coords, peaks, quality, sub = f["coords"][()], f["peaks"][()], f["quality"][()], f["subpixel"][()]
        H, W = imgs.shape[1:]
        h, w = tpls.shape[1:]
        y0, y1, x0, x1 = region(H, W, h, w, crop, valid)
        for q, (i, j) in enumerate(pairs):
            R = maps.setdefault((i, j), brute_map(imgs[i], tpls[j]))
            sub_r = R[y0:y1 + 1, x0:x1 + 1]
            by, bx = np.unravel_index(np.argmax(sub_r), sub_r.shape)  # first maximum, row-major
            check((coords[q] == [by + y0, bx + x0]).all(),
                  f"{opts} pair {q}: coords {coords[q]} != brute force {[by + y0, bx + x0]}")
            check(abs(peaks[q] - sub_r[by, bx]) <= 1e-6, f"{opts} pair {q}: peak {peaks[q]} != {sub_r[by, bx]}")
            check(abs(sub[q][0] - coords[q][0]) <= 0.5 and abs(sub[q][1] - coords[q][1]) <= 0.5,
                  f"{opts} pair {q}: subpixel {sub[q]} more than half a placement from {coords[q]}")
        table = np.genfromtxt(path("bf.csv"), delimiter=",", names=True)
        check(len(table) == len(pairs), "csv: wrong number of rows")
        check((table["index"] == np.arange(len(pairs))).all(), "csv: index column")
        check((table["image"] == pairs[:, 0]).all() and (table["template"] == pairs[:, 1]).all(),
              "csv: pair columns")
        check((table["y"] == coords[:, 0]).all() and (table["x"] == coords[:, 1]).all(), "csv: coords")
        check(np.allclose(table["peak"], peaks, rtol=0, atol=1e-8), "csv: peaks")
        check(np.allclose(table["peak_ratio"], quality[:, 1], rtol=1e-7), "csv: peak_ratio")
    # The exact matches (template cut from the image) peak at 1 where it was cut.
    run(["xcorr", src, "-o", path("bf_plain.h5"), "--quiet"])
    with h5py.File(path("bf_plain.h5")) as f:
        check("subpixel" not in f, "/subpixel written without --subpixel")
        c = f["coords"][()]
        check((c[-2] == [4 + 4, 6 + 6]).all() and (c[-1] == [10 + 4, 3 + 6]).all(),
              f"cut templates not found where cut: {c[-2:]}")


def case_known_offsets():
    """tessera simulate xcorr: every matching pair's peak at the known offset,
    exact matches at 1, noisy ones clearly above the rest (peak ratio > 1.2)."""
    src = path("tiles.h5")
    run(["simulate", "xcorr", "-o", src, "--size", "128x160", "--images", 9, "--pairs", 30, "--seed", 5])
    out = path("tiles_out.h5")
    run(["xcorr", src, "-o", out, "--quiet"], np_=2)
    with h5py.File(src) as s, h5py.File(out) as f:
        truth, pairs = s["truth/coords"][()], s["pairs"][()]
        coords, peaks, quality = f["coords"][()], f["peaks"][()], f["quality"][()]
        own = s["templates"].shape[0]
    known = truth[:, 0] >= 0
    check(known.sum() >= 9, f"only {known.sum()} matching pairs simulated")
    check((coords[known] == truth[known]).all(),
          f"{(coords[known] != truth[known]).any(axis=1).sum()} of {known.sum()} matching pairs off")
    check((quality[known, 1] > 1.2).all(), f"weak matches: {quality[known, 1].min()}")
    check((peaks[known] > 0.8).all(), f"low peaks: {peaks[known].min()}")
    exact = known & (pairs[:, 0] == pairs[:, 1])
    check(exact.sum() == own and np.allclose(peaks[exact], 1.0, atol=1e-5),
          f"exact matches: {exact.sum()} of {own}, peaks {peaks[exact]}")


def case_ranks_bit_identical():
    """1, 2, 3 and 7 ranks, threads, and a memory budget small enough to force
    one image per batch: every dataset identical, including more ranks than pairs."""
    src = path("rk.h5")
    run(["simulate", "xcorr", "-o", src, "--size", "96x80", "--images", 7, "--pairs", 23, "--seed", 3])
    with h5py.File(src) as f:
        s_h, s_w = f["templates"].shape[1:]
    ref = None
    for n, extra in ((1, ["--threads", 1]), (2, ["--threads", 1]), (3, ["--threads", 2]),
                     (7, ["--threads", 1]), (1, ["--threads", 3, "--memory-budget", "1M"]),
                     (3, ["--threads", 1, "--memory-budget", "1M", "--crop", "5,2", "--subpixel"])):
        out = path(f"rk{n}.h5")
        run(["xcorr", src, "-o", out, "--force", "--quiet", "--subpixel", *extra], np_=n)
        with h5py.File(out) as f:
            d = datasets(f)
            check(f.attrs["ranks"] == n, "ranks attribute")
        if "--crop" in extra:
            # The search covers rows [5, mh-6] and columns [2, mw-3] only; where the
            # uncropped peak lies inside, the cropped search finds the same one.
            mh, mw = 96 + s_h - 1, 80 + s_w - 1
            c, rc = d["coords"], ref["coords"]
            inside = (c[:, 0] >= 5) & (c[:, 0] <= mh - 6) & (c[:, 1] >= 2) & (c[:, 1] <= mw - 3)
            check(inside.all(), f"cropped peaks outside the region: {c[~inside]}")
            kept = (rc[:, 0] >= 5) & (rc[:, 0] <= mh - 6) & (rc[:, 1] >= 2) & (rc[:, 1] <= mw - 3)
            check(kept.any() and (c[kept] == rc[kept]).all(), "crop moved a peak that was inside the region")
            continue
        if ref is None:
            ref = d
            continue
        check(d.keys() == ref.keys(), f"{n} ranks: datasets differ")
        for k in ref:
            check(np.array_equal(d[k], ref[k], equal_nan=True) and d[k].dtype == ref[k].dtype,
                  f"{n} ranks {extra}: /{k} differs")
    # --min-overlap: the same bits on 1, 3 and 7 ranks, recorded in the output.
    mo = []
    for n in (1, 3, 7):
        run(["xcorr", src, "-o", path(f"mo{n}.h5"), "--quiet", "--subpixel", "--min-overlap", "0.4"], np_=n)
        with h5py.File(path(f"mo{n}.h5")) as f:
            check(f.attrs["min_overlap"] == 0.4, "min_overlap not recorded")
            mo.append(datasets(f))
    for d in mo[1:]:
        for k in mo[0]:
            check(np.array_equal(d[k], mo[0][k], equal_nan=True), f"--min-overlap: /{k} differs across ranks")
    # More ranks than pairs.
    small = write_set("two.h5", *random_set(np.random.default_rng(2), p=2))
    run(["xcorr", small, "-o", path("two1.h5"), "--quiet"])
    run(["xcorr", small, "-o", path("two7.h5"), "--quiet"], np_=7)
    with h5py.File(path("two1.h5")) as a, h5py.File(path("two7.h5")) as b:
        for k in ("coords", "peaks", "quality"):
            check(np.array_equal(a[k][()], b[k][()]), f"7 ranks, 2 pairs: /{k} differs")


def case_flat_and_constant_regions():
    """A flat image gives R = 0 over every full-overlap window, exactly (valid
    mode: the peak is 0 at the first placement); in full mode the windows that
    overlap the zero padding are not flat and correlate, never NaN. A constant
    template gives 0 everywhere."""
    img = np.full((1, 20, 20), 7.0, np.float32)
    rng = np.random.default_rng(4)
    tpl = np.stack([rng.random((4, 4)).astype(np.float32), np.full((4, 4), 3.0, np.float32)])
    src = write_set("flat.h5", img, tpl, [[0, 0], [0, 1]])
    run(["xcorr", src, "-o", path("flat_valid.h5"), "--quiet", "--mode", "valid"])
    with h5py.File(path("flat_valid.h5")) as f:
        check(np.array_equal(f["peaks"][()], [0.0, 0.0]), f"flat peaks {f['peaks'][()]}")
        check((f["coords"][()] == [[3, 3], [3, 3]]).all(), f"ties: not the first placement {f['coords'][()]}")
        check(np.isfinite(f["quality"][()][:, 0]).all(), "sharpness not finite")
    run(["xcorr", src, "-o", path("flat_full.h5"), "--quiet"])
    with h5py.File(path("flat_full.h5")) as f:
        p = f["peaks"][()]
        R = brute_map(img[0], tpl[0])
        check(np.isfinite(p).all() and abs(p[0] - R.max()) <= 1e-6, f"full mode: {p[0]} vs {R.max()}")
        check(p[1] == 0.0, f"constant template: peak {p[1]}")


def case_parts_and_merge():
    """--part 1/3, 2/3, 3/3 (with 1, 2 and 3 ranks) merged by tessera merge equal a
    whole run bit for bit; --resume skips a complete part; merge refuses a gap
    and parts of different options."""
    src = path("pm.h5")
    run(["simulate", "xcorr", "-o", src, "--size", "64x72", "--images", 5, "--pairs", 17, "--seed", 9])
    run(["xcorr", src, "-o", path("pm_whole.h5"), "--quiet", "--subpixel",
         "--csv", path("pm_whole.csv")], np_=2)
    parts = []
    for i, n in ((1, 1), (2, 2), (3, 3)):
        parts.append(path(f"pm_part{i}.h5"))
        run(["xcorr", src, "-o", parts[-1], "--quiet", "--subpixel", "--part", f"{i}/3"], np_=n)
    with h5py.File(parts[1]) as f:
        check(f["coords"].shape == (6, 2), f"part 2/3 of 17 pairs holds {f['coords'].shape}")
    p = run(["xcorr", src, "-o", parts[0], "--subpixel", "--part", "1/3", "--resume"], np_=2)
    check("skip" in p.stderr.lower() or "complete" in p.stderr.lower(), "resume did not say it skipped:\n" + p.stderr)
    run(["merge", *parts, "-o", path("pm_merged.h5"), "--quiet"], np_=2)
    with h5py.File(path("pm_whole.h5")) as a, h5py.File(path("pm_merged.h5")) as b:
        da, db = datasets(a), datasets(b)
        check(da.keys() == db.keys(), f"merged datasets {sorted(db)} != {sorted(da)}")
        for k in da:
            check(np.array_equal(da[k], db[k], equal_nan=True) and da[k].dtype == db[k].dtype,
                  f"merged /{k} differs from the whole run")
    # merge --csv: the table of all pairs, byte for byte the whole run's; an
    # existing table is refused (exit 2, no output), --resume rewrites it.
    run(["merge", *parts, "-o", path("pm_csv.h5"), "--csv", path("pm_merged.csv"), "--quiet"],
        np_=2)
    with open(path("pm_whole.csv")) as a, open(path("pm_merged.csv")) as b:
        whole_csv, merged_csv = a.read(), b.read()
    check(merged_csv == whole_csv, "merge --csv differs from the whole run's --csv")
    check(whole_csv.count("\n") == 18, f"the table has {whole_csv.count(chr(10))} lines, not 18")
    p = run(["merge", *parts, "-o", path("pm_csv2.h5"), "--csv", path("pm_merged.csv")], np_=2,
            expect_rc=2)
    check("exists" in p.stderr and not os.path.exists(path("pm_csv2.h5")),
          "merge onto an existing table:\n" + p.stderr)
    os.remove(path("pm_merged.csv"))
    p = run(["merge", *parts, "-o", path("pm_csv.h5"), "--csv", path("pm_merged.csv"),
             "--resume"], np_=2)
    with open(path("pm_merged.csv")) as b:
        check(b.read() == whole_csv, "merge --resume --csv did not rewrite the table")
    fit_cube = path("pm_fit.h5")
    run(["simulate", "odmr", "-o", fit_cube, "--size", "4x6", "--peaks", 2])
    fit_parts = [path(f"pm_fit{i}.h5") for i in (1, 2)]
    for i, fp in enumerate(fit_parts, 1):
        run(["fit", fit_cube, "-o", fp, "--quiet", "--part", f"{i}/2"])
    p = run(["merge", *fit_parts, "-o", path("pm_fit_merged.h5"), "--csv", path("pm_fit.csv")],
            np_=2, expect_rc=2)
    check("not a tessera xcorr output" in p.stderr and not os.path.exists(path("pm_fit.csv"))
          and not os.path.exists(path("pm_fit_merged.h5")), "merge --csv of fit parts:\n" + p.stderr)
    p = run(["merge", parts[0], parts[2], "-o", path("pm_gap.h5")], np_=2, expect_rc=2)
    check(not os.path.exists(path("pm_gap.h5")), "merge with a gap wrote a file")
    run(["xcorr", src, "-o", path("pm_other2.h5"), "--quiet", "--subpixel", "--part", "2/3", "--eps", "1e-3"])
    p = run(["merge", parts[0], path("pm_other2.h5"), parts[2], "-o", path("pm_mixed.h5")], np_=2, expect_rc=2)
    check("eps" in p.stderr, "merge of parts with different --eps not explained:\n" + p.stderr)


def top_reference(R, reg, k, d):
    """--top K --min-distance D by its definition, on a map R in numpy: the local
    maxima of region reg (each >= its up to 8 neighbours inside it), by value
    descending then row-major, kept greedily when more than D (Chebyshev) from
    every one kept before; K entries, (-1, -1, nan) beyond the maxima found."""
    y0, y1, x0, x1 = reg
    cand = []
    for y in range(y0, y1 + 1):
        for x in range(x0, x1 + 1):
            nb = R[max(y - 1, y0):min(y + 1, y1) + 1, max(x - 1, x0):min(x + 1, x1) + 1]
            if R[y, x] >= nb.max():
                cand.append((-R[y, x], y, x))
    kept = []
    for v, y, x in sorted(cand):
        if len(kept) < k and all(max(abs(y - a), abs(x - b)) > d for _, a, b in kept):
            kept.append((-v, y, x))
    kept += [(np.nan, -1, -1)] * (k - len(kept))
    return np.array([[y, x] for _, y, x in kept]), np.array([v for v, _, _ in kept])


def case_top_peaks():
    """--top K --min-distance D: /top_coords and /top_peaks against the
    definition on a numpy brute-force map (full, crop, valid; K beyond the
    number of maxima), the first entry the peak bit for bit, D's default
    --exclusion, the CSV columns; 1, 2, 3 and 7 ranks and parts + merge give
    the same bits; the fingerprint keeps outputs without --top resumable."""
    rng = np.random.default_rng(21)
    imgs, tpls, pairs = random_set(rng)
    src = write_set("top.h5", imgs, tpls, pairs)
    H, W = imgs.shape[1:]
    h, w = tpls.shape[1:]
    maps = {}
    for opts, k, d, crop, valid in ((["--top", 4], 4, 5, (0, 0), False),
                                    (["--top", 6, "--min-distance", 2, "--crop", "3,1"], 6, 2, (3, 1), False),
                                    (["--top", 3, "--min-distance", 0, "--mode", "valid"], 3, 0, (0, 0), True),
                                    (["--top", 200, "--min-distance", 1, "--exclusion", 2], 200, 1, (0, 0), False)):
        out = path("top_out.h5")
        run(["xcorr", src, "-o", out, "--force", "--quiet", "--csv", path("top.csv"), *opts])
        with h5py.File(out) as f:
            tc, tv, coords, peaks = f["top_coords"][()], f["top_peaks"][()], f["coords"][()], f["peaks"][()]
            check(f.attrs["top"] == k and f.attrs["min_distance"] == d, f"{opts}: attributes top/min_distance")
            check(tc.shape == (len(pairs), k, 2) and tc.dtype == np.int64, f"{opts}: /top_coords {tc.shape} {tc.dtype}")
            check(tv.shape == (len(pairs), k) and tv.dtype == np.float32, f"{opts}: /top_peaks {tv.shape} {tv.dtype}")
        check(np.array_equal(tc[:, 0], coords) and np.array_equal(tv[:, 0], peaks),
              f"{opts}: the first top entry is not the peak")
        reg = region(H, W, h, w, crop, valid)
        for q, (i, j) in enumerate(pairs):
            R = maps.setdefault((i, j), brute_map(imgs[i], tpls[j]))
            rc, rv = top_reference(R, reg, k, d)
            check(np.array_equal(tc[q], rc), f"{opts} pair {q}: top coords\n{tc[q].tolist()}\n!= {rc.tolist()}")
            check(np.allclose(tv[q], rv, rtol=0, atol=1e-6, equal_nan=True), f"{opts} pair {q}: top peaks")
        if k == 200:
            check((tc[:, -1] == -1).all() and np.isnan(tv[:, -1]).all(), "K beyond the maxima: no missing entries")
        table = np.genfromtxt(path("top.csv"), delimiter=",", names=True)
        names = table.dtype.names
        check(names[8:] == tuple(f"top{c}_{n}" for c in range(1, k + 1) for n in ("y", "x", "peak")),
              f"{opts}: csv columns {names}")
        for c in range(k):
            check((table[f"top{c + 1}_y"] == tc[:, c, 0]).all() and (table[f"top{c + 1}_x"] == tc[:, c, 1]).all(),
                  f"{opts}: csv top{c + 1} coords")
            check(np.allclose(table[f"top{c + 1}_peak"], tv[:, c], rtol=0, atol=1e-8, equal_nan=True),
                  f"{opts}: csv top{c + 1}_peak")
    # Ranks and parts: the same bits.
    sim = path("top_sim.h5")
    run(["simulate", "xcorr", "-o", sim, "--size", "96x80", "--images", 7, "--pairs", 23, "--seed", 3])
    top = ["--top", 5, "--min-distance", 3, "--subpixel"]
    ref = None
    for n in (1, 2, 3, 7):
        run(["xcorr", sim, "-o", path(f"top{n}.h5"), "--quiet", "--threads", 1 + n % 2, *top], np_=n)
        with h5py.File(path(f"top{n}.h5")) as f:
            d = datasets(f)
        ref = ref or d
        for key in ref:
            check(np.array_equal(d[key], ref[key], equal_nan=True), f"--top on {n} ranks: /{key} differs")
    parts = [path(f"top_part{i}.h5") for i in (1, 2, 3)]
    for i, n in zip((1, 2, 3), (1, 2, 3)):
        run(["xcorr", sim, "-o", parts[i - 1], "--quiet", "--part", f"{i}/3", *top], np_=n)
    run(["xcorr", sim, "-o", path("top_whole.h5"), "--quiet", "--csv", path("top_whole.csv"), *top])
    run(["merge", *parts, "-o", path("top_merged.h5"), "--quiet", "--csv", path("top_merged.csv")], np_=2)
    with h5py.File(path("top_whole.h5")) as a, h5py.File(path("top_merged.h5")) as b:
        da, db = datasets(a), datasets(b)
    check(da.keys() == db.keys() and "top_coords" in db, f"merged datasets {sorted(db)}")
    for key in da:
        check(np.array_equal(da[key], db[key], equal_nan=True), f"merged /{key} differs from the whole run")
    with open(path("top_whole.csv")) as a, open(path("top_merged.csv")) as b:
        check(a.read() == b.read(), "merge --csv differs from the whole run's --csv with --top")
    # --resume: a complete part is skipped; other --top options, or none, are refused.
    p = run(["xcorr", sim, "-o", parts[0], "--part", "1/3", "--resume", *top], np_=2)
    check("skipped" in p.stderr, "--resume of a complete --top part not skipped:\n" + p.stderr)
    p = run(["xcorr", sim, "-o", parts[0], "--part", "1/3", "--resume", "--subpixel", "--top", 5], expect_rc=2)
    check("min_distance=3 vs min_distance=5" in p.stderr, "--resume with another distance:\n" + p.stderr)
    run(["xcorr", sim, "-o", path("top_plain.h5"), "--quiet", "--subpixel"])
    p = run(["xcorr", sim, "-o", path("top_plain.h5"), "--resume", "--subpixel"])
    check("skipped" in p.stderr, "an output without --top no longer resumes:\n" + p.stderr)
    p = run(["xcorr", sim, "-o", path("top_plain.h5"), "--resume", *top], expect_rc=2)
    check("(nothing) vs top=5" in p.stderr, "--resume onto an output without --top:\n" + p.stderr)


def case_top_bad_inputs():
    """--top 0 or negative, a negative --min-distance, --min-distance without
    --top: one line on every rank (1 and 2 ranks), exit status 2, no file."""
    good = write_set("top_bad.h5", *random_set(np.random.default_rng(8)))
    for np_ in (1, 2):
        bad_input_(f"top0_{np_}", [good, "--top", "0"], "--top must be >= 1", np_=np_)
        bad_input_(f"top_neg_{np_}", [good, "--top", "-1"], "--top must be >= 1", np_=np_)
        bad_input_(f"min_distance_neg_{np_}", [good, "--top", "2", "--min-distance", "-1"],
                   "--min-distance must be >= 0", np_=np_)
        bad_input_(f"min_distance_alone_{np_}", [good, "--min-distance", "3"], "--min-distance needs --top",
                   np_=np_)
    bad_input_("top_not_a_number", [good, "--top", "many"], "--top", np_=1)


def case_bad_inputs():
    rng = np.random.default_rng(5)
    imgs, tpls, pairs = random_set(rng, n=3, k=4, p=6)
    good = write_set("good.h5", imgs, tpls, pairs)
    nan_img = imgs.copy()
    nan_img[2, 3, 4] = np.nan
    inf_tpl = tpls.copy()
    inf_tpl[1, 0, 0] = -np.inf
    bad = write_set("bad.h5", imgs, tpls, pairs,
                    neg=np.array([[0, 1], [-1, 2]], np.int64), big_img=np.array([[3, 0]], np.int64),
                    big_tpl=np.array([[0, 9]], np.int64), float_pairs=np.array([[0.0, 1.0]]),
                    pairs3=np.zeros((2, 3), np.int64), flat_pairs=np.zeros(4, np.int64),
                    nan_images=nan_img, inf_templates=inf_tpl,
                    large_tpls=rng.random((2, 30, 5)).astype(np.float32),
                    wide_tpls=rng.random((2, 5, 30)).astype(np.float32),
                    images2d=imgs[0], two_pairs=np.array([[0, 1], [1, 0]], np.int64))
    bad_input_("missing_file", [path("nope.h5")], "no such file")
    bad_input_("missing_dataset", [good, "--images", "/nothing"], "/nothing")
    bad_input_("missing_pairs", [good, "--pairs", "/nothing"], "/nothing")
    bad_input_("negative_index", [bad, "--pairs", "/neg"], "pair 1 names image -1")
    bad_input_("image_out_of_range", [bad, "--pairs", "/big_img"], "image 3, outside [0, 3)")
    bad_input_("template_out_of_range", [bad, "--pairs", "/big_tpl"], "template 9, outside [0, 4)")
    bad_input_("float_pairs", [bad, "--pairs", "/float_pairs"], "integer")
    bad_input_("pairs_not_p_by_2", [bad, "--pairs", "/pairs3"], "[p, 2]")
    bad_input_("pairs_1d", [bad, "--pairs", "/flat_pairs"], "[p, 2]")
    bad_input_("images_not_3d", [bad, "--images", "/images2d"], "dimensions")
    bad_input_("nan_in_image", [bad, "--images", "/nan_images", "--pairs", "/pairs"], "image 2 has a non-finite value")
    bad_input_("inf_in_template", [bad, "--templates", "/inf_templates", "--pairs", "/pairs"],
              "template 1 has a non-finite value")
    bad_input_("template_taller", [bad, "--templates", "/large_tpls", "--pairs", "/two_pairs"],
              "larger than the images")
    bad_input_("template_wider", [bad, "--templates", "/wide_tpls", "--pairs", "/two_pairs"],
              "larger than the images")
    bad_input_("crop_too_large", [good, "--crop", "40,0"], "--crop")
    bad_input_("bad_crop_syntax", [good, "--crop", "a,b"], "--crop")
    bad_input_("bad_mode", [good, "--mode", "same"], "--mode")
    bad_input_("negative_eps", [good, "--eps", "-1"], "--eps")
    bad_input_("min_overlap", [good, "--min-overlap", "1.5"], "--min-overlap must be between 0 and 1")
    run(["xcorr", good, "-o", path("exists.h5"), "--quiet"])
    p = run(["xcorr", good, "-o", path("exists.h5")], np_=2, expect_rc=2)
    check("exists" in p.stderr, "existing output not refused:\n" + p.stderr)
    with open(path("exists.csv"), "w") as f:
        f.write("x\n")
    bad_input_("existing_csv", [good, "--csv", path("exists.csv")], "exists")
    # --force replaces both.
    run(["xcorr", good, "-o", path("exists.h5"), "--csv", path("exists.csv"), "--force", "--quiet"])
    with open(path("exists.csv")) as f:
        check(f.readline().startswith("index,image,template,y,x,peak"), "csv not replaced")


def masked_set(rng):
    """Images with a masked stripe of bright noise ('charging'), templates cut
    from the images before it, random masks on both sides."""
    imgs, tpls, pairs = random_set(rng, n=4, k=4, shape=(24, 21), tshape=(7, 6), p=12)
    mi = (rng.random(imgs.shape) > 0.15).astype(np.uint8)
    mi[:, :, 15:18] = 0
    imgs[:, :, 15:18] += 40 * rng.random((4, 24, 3)).astype(np.float32)
    mt = (rng.random(tpls.shape) > 0.1).astype(np.int16) * 7
    return imgs, tpls, pairs, mi, mt


def case_fft_wisdom():
    """--fft-wisdom FILE: the first run measures and writes FILE, later runs read
    it; with one FILE, 1, 2, 3 and 7 ranks give the same bits (also masked, whose
    double plans the file gains on first use); FFTW_ESTIMATE's coordinates, peaks
    within 1e-5; a damaged FILE stops every rank with one line, no output."""
    rng = np.random.default_rng(21)
    imgs, tpls, pairs, mi, mt = masked_set(rng)
    src = write_set("wis.h5", imgs, tpls, pairs, image_masks=mi, template_masks=mt)
    wisdom = path("fft.wisdom")
    outs = []
    for n in (1, 2, 3, 7):
        outs.append(path(f"wis{n}.h5"))
        run(["xcorr", src, "-o", outs[-1], "--quiet", "--subpixel", "--fft-wisdom", wisdom], np_=n)
        if n == 1:
            check(os.path.exists(wisdom), "no wisdom file written")
            with open(wisdom) as f:
                first = f.read()
            check(first.startswith("tessera fft wisdom 1\nfloat "), "wisdom file header")
    with open(wisdom) as f:
        check(f.read() == first, "the wisdom file changed without a new size")
    run(["xcorr", src, "-o", path("wis_est.h5"), "--quiet", "--subpixel"])
    with h5py.File(outs[0]) as f:
        ref = datasets(f)
        check("wisdom" in f.attrs["fft_planning"], "fft_planning attribute")
    for o in outs[1:]:
        with h5py.File(o) as f:
            d = datasets(f)
        for k in ref:
            check(np.array_equal(d[k], ref[k], equal_nan=True), f"--fft-wisdom: /{k} differs in {o}")
    with h5py.File(path("wis_est.h5")) as f:
        check(np.array_equal(f["coords"][()], ref["coords"]), "wisdom plans moved a peak")
        check(np.abs(f["peaks"][()] - ref["peaks"]).max() <= 1e-5, "wisdom plans changed a peak value")
    # Masked pairs: double plans join the file; ranks still agree.
    for n in (1, 3):
        run(["xcorr", src, "-o", path(f"wism{n}.h5"), "--quiet", "--fft-wisdom", wisdom, "--min-overlap", "0.3",
             "--image-masks", "/image_masks", "--template-masks", "/template_masks"], np_=n)
    with open(wisdom) as f:
        check(f.read() != first, "the masked run added no double plans")
    with h5py.File(path("wism1.h5")) as a, h5py.File(path("wism3.h5")) as b:
        for k in ("coords", "peaks", "quality"):
            check(np.array_equal(a[k][()], b[k][()], equal_nan=True), f"masked, wisdom: /{k} differs")
    with open(path("bad.wisdom"), "w") as f:
        f.write("tessera fft wisdom 1\nfloat 12\n(not wisdom)double 0\n")
    bad_input_("wisdom_damaged", [src, "--fft-wisdom", path("bad.wisdom")], "--fft-wisdom")
    with open(path("worse.wisdom"), "w") as f:
        f.write("something else")
    bad_input_("wisdom_not_a_file_of_ours", [src, "--fft-wisdom", path("worse.wisdom")], "not a tessera FFT wisdom file")


def case_backend_selection():
    """Without a GPU: --backend auto uses the CPU and says so in one line (rank 0),
    --backend cuda exits 2 on every rank and writes nothing. With a GPU: the GPU
    run agrees with the CPU's (coordinates equal, peaks within 1e-5)."""
    src = path("be.h5")
    run(["simulate", "xcorr", "-o", src, "--size", "96x80", "--images", 4, "--pairs", 9, "--seed", 8])
    if not e2e.has_gpu():
        e2e.check_cpu_fallback("xcorr", [src], path("be_auto.h5"))
        bad_input_("backend_cuda", [src, "--backend", "cuda"], "--backend cuda")
        bad_input_("backend_cuda_csv", [src, "--backend", "cuda", "--csv", path("be.csv")], "--backend cuda")
        check(not os.path.exists(path("be.csv")), "--backend cuda left a CSV behind")
        print("no GPU: auto used the CPU, cuda refused")
        return
    run(["xcorr", src, "-o", path("be_cpu.h5"), "--backend", "cpu", "--quiet", "--subpixel"])
    run(["xcorr", src, "-o", path("be_gpu.h5"), "--backend", "cuda", "--quiet", "--subpixel"], np_=2)
    run(["xcorr", src, "-o", path("be_auto.h5"), "--quiet", "--subpixel"])
    with h5py.File(path("be_cpu.h5")) as a, h5py.File(path("be_gpu.h5")) as b, \
            h5py.File(path("be_auto.h5")) as c:
        check(a.attrs["backend"] == "cpu" and b.attrs["backend"] == "cuda", "backend attributes")
        check(c.attrs["backend"] == "cuda", "auto did not use the GPU")
        check(np.array_equal(a["coords"][()], b["coords"][()]), "GPU coordinates differ from the CPU's")
        d = np.abs(a["peaks"][()] - b["peaks"][()]).max()
        check(d <= 1e-5, f"GPU peaks differ from the CPU's by {d}")
        check(np.allclose(a["subpixel"][()], b["subpixel"][()], atol=1e-4), "GPU subpixel differs")
        # The GPU path is also independent of the number of ranks (fixed cuFFT batch counts).
        for k in ("coords", "peaks", "quality", "subpixel"):
            check(np.array_equal(b[k][()], c[k][()], equal_nan=True), f"GPU, 1 and 2 ranks: /{k} differs")


if __name__ == "__main__":
    e2e.main(globals())
