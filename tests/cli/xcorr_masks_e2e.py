#!/usr/bin/env python3
"""End-to-end tests of `tessera xcorr` with masks (--image-masks, --template-masks)
and of `tessera simulate xcorr --charging` (run by ctest).

    xcorr_masks_e2e.py --tessera BUILD/tessera --mpiexec MPIEXEC [--mpiflags "..."] CASE

The reference is a brute force of the masked definition in double written here
with numpy (README, "Masks"): the pixels valid in both, two-pass sums.
"""
import os

import h5py
import numpy as np

import e2e
from e2e import check, datasets, path, run
from xcorr_e2e import bad_input_, masked_set, region, top_reference, write_set


def brute_masked(img, mi, tpl, mt, eps=1e-6, min_overlap=0.0):
    """Masked ZNCC (README "Masks") by direct sums over the pixels valid in both,
    two-pass, in double; the padding outside the image invalid."""
    img, tpl = img.astype(np.float64), tpl.astype(np.float64)
    H, W = img.shape
    h, w = tpl.shape
    pad = np.zeros((H + 2 * (h - 1), W + 2 * (w - 1)))
    padm = np.zeros(pad.shape, bool)
    pad[h - 1:h - 1 + H, w - 1:w - 1 + W] = img
    padm[h - 1:h - 1 + H, w - 1:w - 1 + W] = mi != 0
    tv = mt != 0
    R = np.zeros((H + h - 1, W + w - 1))
    for y in range(H + h - 1):
        for x in range(W + w - 1):
            m = padm[y:y + h, x:x + w] & tv
            n = m.sum()
            if n == 0 or n < min_overlap * tv.sum():
                continue
            a, b = pad[y:y + h, x:x + w][m], tpl[m]
            a, b = a - a.mean(), b - b.mean()
            va, vb = (a * a).sum(), (b * b).sum()
            if va > eps and vb > eps:
                R[y, x] = np.clip((a * b).sum() / np.sqrt(va * vb), -1, 1)
    return R


def case_masks():
    """--image-masks / --template-masks: coordinates equal and peaks within 1e-5 of
    a numpy brute force of the masked definition (image masks alone, template
    masks alone, both, with --min-overlap 0.5 and 0); masks without an invalid
    pixel give the unmasked output bit for bit; 1, 2, 3, 7 ranks identical;
    float masks count any nonzero value as valid."""
    rng = np.random.default_rng(1515)
    imgs, tpls, pairs, mi, mt = masked_set(rng)
    src = write_set("mk.h5", imgs, tpls, pairs, image_masks=mi, template_masks=mt,
                    ones_i=np.ones(imgs.shape, np.float32), ones_t=np.full(tpls.shape, 3, np.uint8),
                    float_mi=mi.astype(np.float64) * 0.25)
    for sides, args in (("image", ["--image-masks", "/image_masks"]),
                        ("template", ["--template-masks", "/template_masks"]),
                        ("both", ["--image-masks", "/image_masks", "--template-masks", "/template_masks"])):
        for mo in (0.5, 0.0):
            out = path(f"mk_{sides}_{mo}.h5")
            run(["xcorr", src, "-o", out, "--quiet", "--min-overlap", mo] + args)
            with h5py.File(out) as f:
                coords, peaks = f["coords"][()], f["peaks"][()]
                if sides != "template":
                    check(f.attrs["image_masks"] == "/image_masks", "image_masks not recorded")
            for q, (i, t) in enumerate(pairs):
                R = brute_masked(imgs[i], mi[i] if sides != "template" else np.ones_like(mi[i]),
                                 tpls[t], mt[t] if sides != "image" else np.ones_like(mt[t]), min_overlap=mo)
                if mo == 0 and np.sort(R.ravel())[-2] > R.max() - 1e-9:
                    continue  # R = 1 at several slivers of two pixels: a tie rounding decides
                y, x = np.unravel_index(np.argmax(R), R.shape)
                check((coords[q] == (y, x)).all(), f"{sides} masks, min-overlap {mo}, pair {q}: "
                      f"{tuple(coords[q])} != {(y, x)}")
                check(abs(peaks[q] - R[y, x]) <= 1e-5, f"{sides}, pair {q}: peak {peaks[q]} != {R[y, x]}")
    # The masked image still finds the template cut from it (pair [1, 0], cut at (4, 6)).
    with h5py.File(path("mk_image_0.5.h5")) as b:
        check((b["coords"][-2] == (4 + 6, 6 + 5)).all(), f"masked: the cut not found: {b['coords'][-2]}")
    # All-valid masks: today's bits.
    run(["xcorr", src, "-o", path("mk_ones.h5"), "--quiet", "--image-masks", "/ones_i",
         "--template-masks", "/ones_t", "--subpixel"])
    run(["xcorr", src, "-o", path("mk_plain.h5"), "--quiet", "--subpixel"])
    with h5py.File(path("mk_ones.h5")) as a, h5py.File(path("mk_plain.h5")) as b:
        for k in ("coords", "peaks", "quality", "subpixel"):
            check(np.array_equal(a[k][()], b[k][()], equal_nan=True), f"all-valid masks change /{k}")
    # Float masks (0.25 is valid) equal the uint8 ones; ranks bit-identical.
    outs = []
    for n in (1, 2, 3, 7):
        outs.append(path(f"mk_r{n}.h5"))
        run(["xcorr", src, "-o", outs[-1], "--quiet", "--subpixel", "--min-overlap", "0.3",
             "--image-masks", "/float_mi" if n == 3 else "/image_masks", "--template-masks", "/template_masks"],
            np_=n)
    with h5py.File(outs[0]) as f:
        ref = datasets(f)
    for o in outs[1:]:
        with h5py.File(o) as f:
            d = datasets(f)
        for k in ref:
            check(np.array_equal(d[k], ref[k], equal_nan=True), f"masks: /{k} differs in {o}")


def case_masks_with_options():
    """Masks with --mode valid, --crop, --subpixel, --top: the brute force's peak over
    the searched region and its top 3 by the definition, the CSV; parts (1, 2, 3
    ranks) merged equal a whole run bit for bit; --resume skips a complete output
    and refuses one made with another mask dataset."""
    rng = np.random.default_rng(77)
    imgs, tpls, pairs, mi, mt = masked_set(rng)
    src = write_set("mo.h5", imgs, tpls, pairs, image_masks=mi, template_masks=mt, other_mi=np.ones_like(mi))
    masks = ["--image-masks", "/image_masks", "--template-masks", "/template_masks", "--min-overlap", "0.4"]
    for name, extra, crop, valid in (("valid", ["--mode", "valid"], (0, 0), True),
                                     ("crop", ["--crop", "3,2"], (3, 2), False)):
        out = path(f"mo_{name}.h5")
        run(["xcorr", src, "-o", out, "--quiet", "--subpixel", "--top", 3, "--csv", path(f"mo_{name}.csv")]
            + masks + extra)
        with h5py.File(out) as f:
            coords, peaks, top = f["coords"][()], f["peaks"][()], f["top_coords"][()]
            sub, quality = f["subpixel"][()], f["quality"][()]
        for q, (i, t) in enumerate(pairs):
            R = brute_masked(imgs[i], mi[i], tpls[t], mt[t], min_overlap=0.4)
            y0, y1, x0, x1 = region(*imgs.shape[1:], *tpls.shape[1:], crop, valid)
            sub_r = R[y0:y1 + 1, x0:x1 + 1]
            y, x = np.unravel_index(np.argmax(sub_r), sub_r.shape)
            check((coords[q] == (y + y0, x + x0)).all(), f"masks, {name}, pair {q}: {tuple(coords[q])}")
            check(abs(peaks[q] - sub_r[y, x]) <= 1e-5, f"masks, {name}, pair {q}: peak")
            check((top[q, 0] == coords[q]).all(), f"masks, {name}, pair {q}: first candidate is not the peak")
            want, _ = top_reference(R.astype(np.float32), (y0, y1, x0, x1), 3, 5)
            check((top[q] == want).all(), f"masks, {name}, pair {q}: top 3 {top[q].tolist()} != {want.tolist()}")
            check(abs(sub[q] - coords[q]).max() <= 0.5 and np.isfinite(quality[q, 0]), f"{name}: subpixel, quality")
        with open(path(f"mo_{name}.csv")) as f:
            lines = f.read().splitlines()
        check(len(lines) == len(pairs) + 1 and lines[0].endswith("top3_y,top3_x,top3_peak"), f"{name}: CSV")
    whole = path("mo_whole.h5")
    args = ["--quiet", "--subpixel", "--top", 2] + masks
    run(["xcorr", src, "-o", whole] + args, np_=2)
    parts = []
    for i, n in ((1, 1), (2, 2), (3, 3)):
        parts.append(path(f"mo_part{i}.h5"))
        run(["xcorr", src, "-o", parts[-1], "--part", f"{i}/3"] + args, np_=n)
    run(["merge", *parts, "-o", path("mo_merged.h5"), "--quiet"])
    with h5py.File(whole) as a, h5py.File(path("mo_merged.h5")) as b:
        da, db = datasets(a), datasets(b)
        check(da.keys() == db.keys(), "merged datasets differ")
        for k in da:
            check(np.array_equal(da[k], db[k], equal_nan=True), f"masks: merged /{k} differs from the whole run")
    p = run(["xcorr", src, "-o", whole, "--resume", "--subpixel", "--top", 2] + masks)
    check("skip" in p.stderr.lower() or "complete" in p.stderr.lower(), "resume did not skip:\n" + p.stderr)
    p = run(["xcorr", src, "-o", whole, "--resume", "--subpixel", "--top", 2, "--image-masks", "/other_mi",
             "--template-masks", "/template_masks", "--min-overlap", "0.4"], expect_rc=2)
    check("image_masks" in p.stderr, "resume with other masks not refused with the reason:\n" + p.stderr)


def case_mask_bad_inputs():
    """Masks of the wrong shape or count, not 3-D, missing, with a NaN, or with
    --backend cuda: one line, exit 2 on every rank, no file."""
    rng = np.random.default_rng(4)
    imgs, tpls, pairs, mi, mt = masked_set(rng)
    nan_mask = mi.astype(np.float32)
    nan_mask[2, 3, 4] = np.nan
    src = write_set("mkbad.h5", imgs, tpls, pairs, image_masks=mi, template_masks=mt,
                    short=mi[:3], narrow=mi[:, :, :20], flat=mi[0], nan_mask=nan_mask,
                    tpl_shaped=mt)
    bad_input_("mask_count", [src, "--image-masks", "/short"], "differs from the images'")
    bad_input_("mask_shape", [src, "--image-masks", "/narrow"], "differs from the images'")
    bad_input_("template_mask_shape", [src, "--template-masks", "/image_masks"], "differs from the templates'")
    bad_input_("image_mask_of_templates", [src, "--image-masks", "/tpl_shaped"], "differs from the images'")
    bad_input_("mask_2d", [src, "--image-masks", "/flat"], "dimensions")
    bad_input_("mask_missing", [src, "--template-masks", "/nothing"], "/nothing")
    bad_input_("mask_nan", [src, "--image-masks", "/nan_mask"], "mask 2 has a non-finite value (nan) at (3, 4)")
    if not e2e.has_gpu():
        bad_input_("mask_cuda", [src, "--image-masks", "/image_masks", "--backend", "cuda"], "--backend cuda")


def case_template_cache():
    """A --memory-budget too small to keep every template's double spectra: the
    batches keep as many as fit (the most used first), the rest are recomputed
    per pair, and rank 0 says so in one note naming a budget that keeps them
    all; at that budget there is no note (whatever batches it makes). The bits
    are the same at every budget and on 1 or 3 ranks."""
    import re
    rng = np.random.default_rng(33)
    imgs = rng.random((6, 256, 256)).astype(np.float32)
    tpls = np.stack([imgs[i % 6, 10 + 5 * i:74 + 5 * i, 20:84] for i in range(8)])
    pairs = [[i, t] for i in range(6) for t in range(8) if (i + t) % 2 == 0]
    mi = (rng.random(imgs.shape) > 0.05).astype(np.uint8)
    src = write_set("cache.h5", imgs, tpls, pairs, image_masks=mi)
    args = [src, "--image-masks", "/image_masks", "--min-overlap", "0.3", "--threads", 2]

    def notes(out, budget, np_=0):
        p = run(["xcorr", *args, "-o", path(out), "--memory-budget", budget], np_=np_)
        return [l for l in p.stderr.splitlines() if "templates' spectra" in l]

    small = notes("c20.h5", "20M")
    check(len(small) == 1, f"expected one note at 20M, got {small}")
    m = re.search(r"; ([0-9.]+) (KiB|MiB|GiB) per rank keeps them all$", small[0])
    check(m is not None, f"no budget in the note: {small[0]}")
    enough = m.group(1) + m.group(2)[0]
    check(notes("c_enough.h5", enough) == [], f"a note again at the budget it named ({enough})")
    check(notes("c40.h5", "40M") != [], "no note at 40M")
    check(notes("c1g.h5", "1G") == [], "a note at 1G")
    check(len(notes("c20_3.h5", "20M", np_=3)) == 1, "not one note on 3 ranks")
    with h5py.File(path("c1g.h5")) as ref:
        for out in ("c20.h5", "c_enough.h5", "c40.h5", "c20_3.h5"):
            with h5py.File(path(out)) as f:
                for k in ("coords", "peaks", "quality"):
                    check(f[k][()].tobytes() == ref[k][()].tobytes(), f"{out}: {k} differs from 1G's")


def case_wisdom_note():
    """Masked pairs without --fft-wisdom: rank 0 suggests it in one note (also
    on 3 ranks); none with --fft-wisdom, with --quiet, or without masks."""
    rng = np.random.default_rng(34)
    imgs = rng.random((2, 64, 64)).astype(np.float32)
    tpls = imgs[:, 8:24, 8:24].copy()
    mi = (rng.random(imgs.shape) > 0.1).astype(np.uint8)
    src = write_set("wnote.h5", imgs, tpls, [[0, 0], [1, 1]], image_masks=mi)

    def notes(extra, masks=True, np_=0):
        m = ["--image-masks", "/image_masks"] if masks else []
        p = run(["xcorr", src, *m, "-o", path("wnote_out.h5"), "--force", *extra], np_=np_)
        return [l for l in p.stderr.splitlines() if "--fft-wisdom FILE" in l]

    check(len(notes([])) == 1, "expected one --fft-wisdom note for masked pairs")
    check(len(notes([], np_=3)) == 1, "not one --fft-wisdom note on 3 ranks")
    check(notes(["--fft-wisdom", path("wnote.wisdom")]) == [], "a note with --fft-wisdom")
    check(notes(["--quiet"]) == [], "a note with --quiet")
    check(notes([], masks=False) == [], "a note without masks")


def case_charging():
    """`simulate xcorr --charging`: bands of zeros in /image_masks where the
    images were brightened, /template_masks the templates' crops of them; the
    bands fool plain ZNCC on some matching pairs and the masked ZNCC finds every
    truth; --charging 0 writes no masks; outside [0, 1] is refused."""
    src = path("ch.h5")
    run(["simulate", "xcorr", "-o", src, "--size", "512x512", "--images", 16, "--pairs", 40, "--charging", 0.5])
    with h5py.File(src) as f:
        mi, mt = f["image_masks"][()], f["template_masks"][()]
        imgs, tpls = f["images"][()], f["templates"][()]
        truth = f["truth/coords"][()]
        check(mi.shape == imgs.shape and mt.shape == tpls.shape, "mask shapes")
        rows = (mi == 0).all(axis=2)  # whole rows of a band
        check(((mi == 0) == rows[:, :, None]).all(), "a band is not made of whole rows")
        charged = rows.any(axis=1)
        check(4 <= charged.sum() <= 12, f"{charged.sum()} of 16 tiles charged at 0.5")
        check((rows.sum(axis=1)[charged] == 64).all(), "bands are not H/8 rows")
        # Charged rows are brighter than the rows around them.
        for i in np.where(charged)[0][:3]:
            check(imgs[i][rows[i]].mean() > imgs[i][~rows[i]].mean() + 100, f"tile {i}: band not brighter")
    run(["xcorr", src, "-o", path("ch_plain.h5"), "--quiet", "--min-overlap", "0.3"])
    run(["xcorr", src, "-o", path("ch_masked.h5"), "--quiet", "--min-overlap", "0.3", "--image-masks",
         "/image_masks", "--template-masks", "/template_masks"], np_=2)
    known = truth[:, 0] >= 0
    with h5py.File(path("ch_plain.h5")) as a, h5py.File(path("ch_masked.h5")) as b:
        plain = (a["coords"][()] == truth).all(axis=1)[known]
        masked = (b["coords"][()] == truth).all(axis=1)[known]
    print(f"{known.sum()} matching pairs: plain ZNCC right on {plain.sum()}, masked on {masked.sum()}")
    check(masked.all(), "the masked ZNCC missed a truth")
    check(not plain.all(), "the charging bands fooled plain ZNCC on no pair")
    run(["simulate", "xcorr", "-o", path("ch0.h5"), "--size", "64x64", "--images", 4, "--charging", 0])
    with h5py.File(path("ch0.h5")) as f:
        check("image_masks" not in f and "template_masks" not in f, "--charging 0 wrote masks")
    p = run(["simulate", "xcorr", "-o", path("ch_bad.h5"), "--charging", 1.5], np_=2, expect_rc=2)
    check("--charging must be in [0, 1]" in p.stderr and not os.path.exists(path("ch_bad.h5")), p.stderr)


if __name__ == "__main__":
    e2e.main(globals())
