#!/usr/bin/env python3
"""End-to-end tests of `tessera import` (run by ctest): files written here by the
source programs' own conventions (numpy's np.save; h5py behind a MATLAB header
for QDMlab run files; tifffile; qdmpy's spool layout), imported, and read back
or fitted.

    import_e2e.py --tessera BUILD/tessera --mpiexec MPIEXEC [--mpiflags "..."] CASE
"""
import os

import h5py
import numpy as np
import mrcfile
import tifffile

import e2e
from e2e import check, path, run

GAMMA, A14N, D = 28.024, 2.158, 2870.0


def matlab_v73(name, datasets):
    """A MATLAB v7.3 file as MATLAB writes it: HDF5 behind a 512-byte header,
    every array stored with its MATLAB dimensions reversed."""
    out = path(name)
    with h5py.File(out, "w", userblock_size=512) as f:
        for k, v in datasets.items():
            f[k] = v
    with open(out, "r+b") as f:
        f.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Thu Dec  3 08:00:00 2026 "
                b"HDF5 schema 1.00 .".ljust(116, b" "))
    return out


def qdmlab_run(name, stacks, freqs_hz, rows, cols):
    """stacks: MATLAB [n_freq, pixels] arrays (pixel p = row * cols + col), stored
    as HDF5 (pixels, n_freq); freqList MATLAB [1, n] is HDF5 (n, 1)."""
    d = {f"imgStack{k + 1}": np.ascontiguousarray(s.T) for k, s in enumerate(stacks)}
    d.update(freqList=np.asarray(freqs_hz, float)[:, None], imgNumRows=np.array([[rows]], float),
             imgNumCols=np.array([[cols]], float), numFreqs=np.array([[stacks[0].shape[0]]], float))
    return matlab_v73(name, d)


def read(name):
    with h5py.File(name) as f:
        return f["data"][()], f["sweep"][()], dict(f.attrs), f["data"]


def case_npy_round_trips():
    """C and Fortran order, [ny, nx, n_sweep] layout, big-endian uint16, float64
    kept or stored as float32 on request; a non-square image; the sweep from a
    text file, a .npy file or START:STOP:N. Every value exact."""
    rng = np.random.default_rng(1)
    cube = rng.random((9, 5, 13))  # n_sweep 9, ny 5, nx 13
    f32 = cube.astype(np.float32)
    sweep = np.linspace(2800, 2940, 9)
    np.savetxt(path("sweep.txt"), sweep)
    np.save(path("sweep.npy"), sweep)
    np.save(path("c.npy"), f32)
    np.save(path("f.npy"), np.asfortranarray(f32))
    np.save(path("yxs.npy"), np.ascontiguousarray(f32.transpose(1, 2, 0)))
    np.save(path("yxs_f.npy"), np.asfortranarray(f32.transpose(1, 2, 0)))
    np.save(path("u16.npy"), (cube * 4000).astype(">u2"))
    np.save(path("f64.npy"), cube)
    cases = [("c.npy", ["--sweep-file", path("sweep.txt")], f32),
             ("f.npy", ["--sweep-file", path("sweep.npy")], f32),
             ("yxs.npy", ["--layout", "yxs", "--sweep", "2800:2940:9"], f32),
             ("yxs_f.npy", ["--layout", "yxs", "--sweep", "2800:2940:9"], f32),
             ("u16.npy", ["--sweep", "2800:2940:9"], (cube * 4000).astype(np.uint16)),
             ("f64.npy", ["--sweep", "2800:2940:9"], cube),
             ("f64.npy", ["--sweep", "2800:2940:9", "--float32"], f32),
             ("yxs_f.npy", ["--layout", "yxs", "--sweep", "2800:2940:9", "--memory-budget", "1K"], f32)]
    for k, (src, extra, want) in enumerate(cases):
        out = path(f"n{k}.h5")
        run(["import", "npy", path(src), "-o", out, "--quiet", *extra], np_=k % 3)
        data, sw, attrs, _ = read(out)
        check(data.dtype == want.dtype, f"{src} {extra}: stored as {data.dtype}, expected {want.dtype}")
        check(data.shape == (9, 5, 13), f"{src}: shape {data.shape} != (9, 5, 13)")
        check(np.array_equal(data, want), f"{src} {extra}: values differ")
        check(np.allclose(sw, sweep, rtol=0, atol=1e-9), f"{src}: sweep {sw}")
        check(attrs["source_format"] == "npy", "source_format not recorded")
    with h5py.File(path("n4.h5")) as f:
        check(f["data"].compression == "gzip" and f["data"].chunks[0] == 9, "integers not chunked and deflated")
    with h5py.File(path("n0.h5")) as f:
        check(f["data"].compression is None, "floats compressed")
    # fitted like the same cube written by h5py
    run(["fit", path("n0.h5"), "-o", path("n0_fit.h5"), "--peaks", 1, "--quiet"])
    print("npy: C, Fortran, yxs, big-endian uint16, float64 and --float32: exact")


def case_qdmlab_round_trips():
    """Two stacks and four (each resonance in two parts), a non-square image:
    QDMlab's pixel (row r, column c) is /data[:, r, c]; the sweep in MHz; the
    windows' lengths recorded; several runs into a folder."""
    rng = np.random.default_rng(2)
    rows, cols, nf = 6, 11, 8
    low = rng.random((nf, rows * cols))
    high = rng.random((nf, rows * cols))
    f_low = np.linspace(2.80e9, 2.84e9, nf)
    f_high = np.linspace(2.90e9, 2.94e9, nf)
    two = qdmlab_run("two.mat", [low, high], np.concatenate([f_low, f_high]), rows, cols)
    four = qdmlab_run("four.mat", [low[:3], low[3:], high[:5], high[5:]], np.concatenate([f_low, f_high]),
                      rows, cols)
    for src in (two, four):
        out = path(os.path.basename(src) + ".h5")
        run(["import", "qdmlab", src, "-o", out, "--quiet", "--memory-budget", "2K"])  # a row at a time
        data, sw, attrs, _ = read(out)
        check(data.shape == (2 * nf, rows, cols), f"{src}: shape {data.shape}")
        check(data.dtype == np.float64, f"doubles stored as {data.dtype}")
        for r in (0, 2, rows - 1):
            for c in (0, 5, cols - 1):
                p = r * cols + c
                check(np.array_equal(data[:nf, r, c], low[:, p]) and np.array_equal(data[nf:, r, c], high[:, p]),
                      f"{src}: pixel ({r}, {c}) is not QDMlab's pixel {p}")
        check(np.allclose(sw, np.concatenate([f_low, f_high]) / 1e6), f"sweep {sw}")
        check(attrs["n_low"] == nf and attrs["n_high"] == nf, "windows not recorded")
    check(np.array_equal(read(path("two.mat.h5"))[0], read(path("four.mat.h5"))[0]), "2 and 4 stacks differ")
    os.mkdir(path("runs"))
    run(["import", "qdmlab", two, four, "-o", path("runs"), "--quiet", "--float32"], np_=2)
    for stem in ("two", "four"):
        data = read(path(f"runs/{stem}.h5"))[0]
        check(data.dtype == np.float32 and np.array_equal(data[:nf, 1, 3], low[:, cols + 3].astype(np.float32)),
              f"runs/{stem}.h5 wrong")
    print("qdmlab: 2 and 4 stacks, non-square, pixel order, sweep, folder of runs: exact")


def case_tiff_round_trips():
    """Multi-page stacks as tifffile writes them: uint16 in strips, deflated
    strips of 3 rows, float32 in 16 x 16 tiles, float64, int8; non-square pages;
    every value exact, page i = sweep point i."""
    rng = np.random.default_rng(5)
    u16 = (rng.random((6, 11, 17)) * 65535).astype(np.uint16)
    f32 = rng.random((4, 40, 35)).astype(np.float32)
    f64 = rng.random((3, 9, 14))
    i8 = (rng.random((3, 9, 14)) * 250 - 125).astype(np.int8)
    mb = dict(photometric="minisblack")
    tifffile.imwrite(path("u16.tif"), u16, **mb)
    tifffile.imwrite(path("u16z.tif"), u16, compression="zlib", rowsperstrip=3, **mb)
    tifffile.imwrite(path("f32t.tif"), f32, tile=(16, 16), **mb)
    tifffile.imwrite(path("f64.tif"), f64, **mb)
    tifffile.imwrite(path("i8.tif"), i8, **mb)
    for k, (src, want, extra) in enumerate([("u16.tif", u16, []), ("u16z.tif", u16, []), ("f32t.tif", f32, []),
                                            ("f64.tif", f64, []), ("i8.tif", i8.astype(np.int32), []),
                                            ("f64.tif", f64.astype(np.float32), ["--float32"]),
                                            ("u16z.tif", u16, ["--memory-budget", "1K"])]):
        out = path(f"t{k}.h5")
        run(["import", "tiff", path(src), "-o", out, "--quiet", "--sweep", f"2800:2900:{want.shape[0]}", *extra],
            np_=k % 2)
        data, sw, attrs, _ = read(out)
        check(data.dtype == want.dtype and np.array_equal(data, want), f"{src} {extra}: values or type differ")
        check(len(sw) == want.shape[0] and sw[0] == 2800 and sw[-1] == 2900, f"{src}: sweep {sw}")
    print("tiff: strips, deflated strips, tiles; uint16, float32, float64, int8: exact")


def spool(name, frames, sweep, meta):
    """A qdmpy spool: LabVIEW's two int32 then the float32 frames [AOIHeight][AOIWidth],
    and NAME_metaSpool.txt (the tab-separated sweep, then key: value lines)."""
    out = path(name)
    with open(out, "wb") as f:
        np.array(frames.shape[1:], np.int32).tofile(f)
        frames.astype(np.float32).tofile(f)
    with open(out + "_metaSpool.txt", "w") as f:
        f.write("\t".join(repr(float(x)) for x in sweep) + "\n")
        for k, v in meta.items():
            f.write(f"{k}: {v}\n")
    return out


def case_qdmpy_round_trips():
    """Spools with and without reference frames, AOIHeight != AOIWidth: the
    output is the image qdmpy shows (its reshape to [frames, AOIHeight, AOIWidth]
    transposed to [frames, AOIWidth, AOIHeight]), signal frames first."""
    rng = np.random.default_rng(6)
    H, W, n = 6, 9, 5
    sweep = np.linspace(2850.0, 2890.0, n)
    meta = {"AOIHeight": H, "AOIWidth": W, "Binning": 2, "Field Strength (G)": 12.5, "Mag on/off": "TRUE"}
    both = rng.random((2 * n, H, W)).astype(np.float32)
    one = rng.random((n, H, W)).astype(np.float32)
    sr = spool("sr", both, sweep, meta)
    plain = spool("plain", one, sweep, meta)
    run(["import", "qdmpy", sr, "-o", path("sr.h5"), "--quiet"], np_=2)
    run(["import", "qdmpy", plain, "-o", path("plain.h5"), "--quiet", "--memory-budget", "1K"])
    shown = both.transpose(0, 2, 1)
    with h5py.File(path("sr.h5")) as f:
        check(f["sig"].shape == (n, W, H), f"sig shape {f['sig'].shape} != {(n, W, H)}")
        check(np.array_equal(f["sig"][()], shown[0::2]) and np.array_equal(f["ref"][()], shown[1::2]),
              "sig/ref frames not as qdmpy shows them")
        check(np.allclose(f["sweep"][()], sweep), "sweep")
        check(f.attrs["meta Binning"] == "2" and f.attrs["meta Field Strength (G)"] == "12.5", "metadata lost")
    with h5py.File(path("plain.h5")) as f:
        check("data" in f and np.array_equal(f["data"][()], one.transpose(0, 2, 1)), "plain spool differs")
    run(["fit", path("sr.h5"), "-o", path("sr_fit.h5"), "--sig", "/sig", "--ref", "/ref", "--peaks", 1, "--quiet"])
    print("qdmpy: sig/ref and plain spools, orientation as qdmpy shows it: exact")


def case_tiles_xcorr_as_the_original():
    """Tiles of `tessera simulate xcorr` exported as the EM tools write them (one
    TIFF per image, given by a glob; templates in an MRC stack and in 16-bit MRC
    files), a pair list with a header, masks: imported, and tessera xcorr on the
    import finds what it finds on the original."""
    src = path("sim.h5")
    run(["simulate", "xcorr", "-o", src, "--size", "96x128", "--template-size", "32x40", "--images", 4, "--pairs", 10])
    with h5py.File(src) as f:
        images, templates, pairs = f["images"][()], f["templates"][()], f["pairs"][()]
    os.mkdir(path("em"))
    for k, im in enumerate(images):
        tifffile.imwrite(path(f"em/tile_{k:02d}.tif"), im, photometric="minisblack")
    with mrcfile.new(path("em/templates.mrcs")) as m:
        m.set_data(templates.astype(np.float32))
    ints = np.round(templates * 100).astype(np.int16)
    for k, t in enumerate(ints):
        with mrcfile.new(path(f"em/t16_{k}.mrc")) as m:
            m.set_data(t)
    with open(path("em/pairs.csv"), "w") as f:
        f.write("image,template\n" + "".join(f"{a},{b}\n" for a, b in pairs))
    masks = (np.arange(images[0].size).reshape(images[0].shape) % 7 != 0).astype(np.uint8)
    tifffile.imwrite(path("em/masks.tif"), np.stack([masks] * len(images)), photometric="minisblack")
    run(["import", "tiles", "--images", path("em/tile_*.tif"), "--templates", path("em/templates.mrcs"),
         "--pairs", path("em/pairs.csv"), "--image-masks", path("em/masks.tif"), "-o", path("imp.h5"), "--quiet"],
        np_=2)
    with h5py.File(path("imp.h5")) as f:
        check(np.array_equal(f["images"][()], images.astype(np.float32)), "images differ")
        check(np.array_equal(f["templates"][()], templates.astype(np.float32)), "templates differ")
        check(np.array_equal(f["pairs"][()], pairs), "pairs differ")
        check(np.array_equal(f["image_masks"][()], np.stack([masks] * len(images))), "masks differ")
    run(["xcorr", src, "-o", path("x_src.h5"), "--quiet", "--subpixel"])
    run(["xcorr", path("imp.h5"), "-o", path("x_imp.h5"), "--quiet", "--subpixel"])
    with h5py.File(path("x_src.h5")) as a, h5py.File(path("x_imp.h5")) as b:
        for k in ("coords", "peaks"):
            check(np.array_equal(a[k][()], b[k][()]), f"xcorr /{k} differs on the import")
    files = [path(f"em/t16_{k}.mrc") for k in range(len(ints))]
    run(["import", "tiles", "--images", path("em/tile_*.tif"), "--templates", *files,
         "--pairs", path("em/pairs.csv"), "-o", path("imp16.h5"), "--quiet"])
    with h5py.File(path("imp16.h5")) as f:
        check(np.array_equal(f["templates"][()], ints.astype(np.float32)), "16-bit MRC templates differ")
    print("tiles: TIFF glob, MRC stack and files, pairs with a header, masks; xcorr identical")


def case_streamed_in_blocks():
    """Wide inputs (a row of all sweep points over 1 MiB: chunks of one row)
    imported with a budget of one row per block give the same files as in one
    block: npy (Fortran order, yxs), tiff (deflated strips of 3 rows, re-read
    for each block), qdmlab (2 stacks), qdmpy (sig/ref)."""
    rng = np.random.default_rng(7)
    n, rows, cols = 101, 5, 2700
    f32 = rng.random((n, rows, cols)).astype(np.float32)
    np.save(path("wide.npy"), np.asfortranarray(f32.transpose(1, 2, 0)))
    u16 = (rng.random((n, rows, cols)) * 65535).astype(np.uint16)
    tifffile.imwrite(path("wide.tif"), u16, compression="zlib", rowsperstrip=3, photometric="minisblack")
    low, high = rng.random((60, rows * cols)), rng.random((60, rows * cols))
    mat = qdmlab_run("wide.mat", [low, high], np.linspace(2.8e9, 2.95e9, 120), rows, cols)
    sp = spool("wide_sp", rng.random((2 * n, cols, rows)).astype(np.float32), np.linspace(1, 2, n),
               {"AOIHeight": cols, "AOIWidth": rows})
    jobs = [("npy", path("wide.npy"), ["--layout", "yxs", "--sweep", f"1:2:{n}"], f32),
            ("tiff", path("wide.tif"), ["--sweep", f"1:2:{n}"], u16),
            ("qdmlab", mat, [], None), ("qdmpy", sp, [], None)]
    for fmt, src, extra, want in jobs:
        one, many = path(f"w_{fmt}_1.h5"), path(f"w_{fmt}_n.h5")
        run(["import", fmt, src, "-o", one, "--quiet", *extra])
        run(["import", fmt, src, "-o", many, "--quiet", "--memory-budget", "1K", *extra])
        with h5py.File(one) as a, h5py.File(many) as b:
            check(a.attrs["chunk_rows"] == 1, f"{fmt}: chunks of {a.attrs['chunk_rows']} rows, expected 1")
            da, db = e2e.datasets(a), e2e.datasets(b)
            for k in da:
                check(np.array_equal(da[k], db[k]), f"{fmt}: /{k} differs when streamed a row at a time")
            if want is not None:
                check(np.array_equal(da["data"], want), f"{fmt}: values differ from the source")
    print("npy, tiff, qdmlab, qdmpy: a row per block gives the same files")


def case_qdmlab_fit_gives_b111():
    """A QDMlab run simulated here (two 14N triplets per pixel, low and high
    windows, a field gradient across a non-square image), imported and fitted
    with the shipped esr14n_pair model: the B111 map of the simulation's truth."""
    rng = np.random.default_rng(3)
    rows, cols = 10, 16
    yy, xx = np.mgrid[0:rows, 0:cols]
    b = 1.0 + 0.15 * xx / (cols - 1) + 0.05 * yy / (rows - 1)  # mT
    f_low = np.linspace(2825.0, 2850.0, 60)
    f_high = np.linspace(2890.0, 2915.0, 60)
    x = np.concatenate([f_low, f_high])
    w = 0.5  # half width, MHz

    def triplet(c):
        return sum(1 / (1 + ((x[:, None] - c[None, :] - s) / w) ** 2) for s in (-A14N, 0.0, A14N))

    bp = b.ravel()
    spectra = 1 - 0.01 * (triplet(D - GAMMA * bp) + triplet(D + GAMMA * bp))
    spectra += 1e-3 * rng.standard_normal(spectra.shape)
    src = qdmlab_run("b.mat", [spectra[:60], spectra[60:]], x * 1e6, rows, cols)
    run(["import", "qdmlab", src, "-o", path("b.h5"), "--quiet"])
    run(["fit", path("b.h5"), "-o", path("b_fit.h5"), "--model", "esr14n_pair", "--quiet",
         "--start", f"pos_lo={D - GAMMA * 1.1},pos_hi={D + GAMMA * 1.1}"])
    with h5py.File(path("b_fit.h5")) as f:
        got = f["derived"]["b111"][()]
        ok = f["state"][()] == 0
    err = np.abs(got - b)
    check(ok.mean() > 0.97, f"only {ok.mean():.3f} converged")
    check(np.median(err[ok]) < 2e-3 and np.mean(err[ok] < 0.01) > 0.97,
          f"B111 off the truth: median {np.median(err[ok]):.4f} mT, {np.mean(err[ok] >= 0.01):.3f} beyond 0.01 mT")
    print(f"esr14n_pair on the imported run: B111 median error {np.median(err[ok]) * 1e3:.2f} uT")


def case_bad_inputs():
    """One line per rank, exit 2, no file left: on 2 ranks for one case of each
    kind, the others in one process (mpiexec's start-up is most of a case)."""
    def bad(name, args, pattern, np_=0):
        if np_:
            return e2e.bad_input("import", name, args, pattern, np_=np_)
        out = path(name + "_out.h5")
        p = run(["import", *args, "-o", out], expect_rc=2)
        lines = [l for l in p.stderr.splitlines() if l.startswith("tessera:")]
        check(len(lines) == 1 and pattern in lines[0], f"{name}: expected one line with '{pattern}', got:\n{p.stderr}")
        check(not os.path.exists(out) and not os.path.exists(out + ".partial"), f"{name}: output left behind")
    rng = np.random.default_rng(4)
    rows, cols, nf = 3, 4, 5
    st = [rng.random((nf, rows * cols)), rng.random((nf, rows * cols))]
    freqs = np.linspace(2.8e9, 2.9e9, 2 * nf)
    good = qdmlab_run("good.mat", st, freqs, rows, cols)
    with open(path("text.mat"), "w") as f:
        f.write("not a MATLAB file\n")
    no_stack2 = matlab_v73("no2.mat", {"imgStack1": st[0].T, "freqList": freqs[:, None],
                                       "imgNumRows": np.array([[rows]], float),
                                       "imgNumCols": np.array([[cols]], float)})
    wrong_pixels = qdmlab_run("px.mat", st, freqs, rows, cols + 1)
    wrong_freqs = qdmlab_run("fq.mat", st, freqs[:-1], rows, cols)
    np.save(path("cube.npy"), rng.random((6, 3, 4)).astype(np.float32))
    np.save(path("flat.npy"), rng.random((6, 12)).astype(np.float32))
    with open(path("fake.npy"), "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + b"\x10\x00" + b"{'descr': '<f4'}" + b"\x00" * 8)
    with open(path("short.npy"), "wb") as f:
        f.write(open(path("cube.npy"), "rb").read()[:-8])
    with open(path("exists.h5"), "w") as f:
        f.write("")
    cube = path("cube.npy")
    bad("not_hdf5", ["qdmlab", path("text.mat")], "not a MATLAB v7.3 (HDF5) file", np_=2)
    bad("no_stack2", ["qdmlab", no_stack2], "no dataset imgStack2")
    bad("pixels", ["qdmlab", wrong_pixels], "imgNumRows x imgNumCols")
    bad("freqs", ["qdmlab", wrong_freqs], "freqList holds 9 frequencies")
    bad("qdmlab_sweep", ["qdmlab", good, "--sweep", "1:2:10"], "carries its sweep")
    bad("missing", ["qdmlab", path("nothing.mat")], "no such file")
    bad("not_npy", ["npy", path("text.mat"), "--sweep", "1:2:6"], "not a .npy file")
    bad("npy_header", ["npy", path("fake.npy"), "--sweep", "1:2:6"], "no 'fortran_order'")
    bad("npy_short", ["npy", path("short.npy"), "--sweep", "1:2:6"], "needs", np_=2)
    bad("npy_2d", ["npy", path("flat.npy"), "--sweep", "1:2:6"], "expected 3")
    bad("sweep_length", ["npy", cube, "--sweep", "1:2:7"], "6 sweep points in the data, 7 sweep values", np_=2)
    bad("no_sweep", ["npy", cube], "give the sweep")
    bad("sweep_text", ["npy", cube, "--sweep", "1..2"], "START:STOP:N")
    bad("layout", ["npy", cube, "--sweep", "1:2:6", "--layout", "xys"], "--layout")
    bad("format", ["hdf4", cube], "unknown format 'hdf4'")
    tifffile.imwrite(path("rgb.tif"), (rng.random((8, 9, 3)) * 255).astype(np.uint8), photometric="rgb")
    with tifffile.TiffWriter(path("mixed.tif")) as t:
        t.write(np.zeros((4, 5), np.uint16), photometric="minisblack")
        t.write(np.zeros((4, 6), np.uint16), photometric="minisblack")
    bad("not_tiff", ["tiff", cube, "--sweep", "1:2:6"], "not a TIFF file")
    bad("rgb_tiff", ["tiff", path("rgb.tif"), "--sweep", "1:2:1"], "3 samples per pixel")
    bad("mixed_tiff", ["tiff", path("mixed.tif"), "--sweep", "1:2:2"], "every page must match", np_=2)
    tifffile.imwrite(path("good.tif"), np.zeros((2, 4, 5), np.uint16), photometric="minisblack")
    bad("tiff_sweep", ["tiff", path("good.tif")], "give the sweep")
    bad("tiff_sweep_length", ["tiff", path("good.tif"), "--sweep", "1:2:3"], "2 sweep points in the data, 3")
    tifffile.imwrite(path("a.tif"), np.zeros((20, 30), np.uint16), photometric="minisblack")
    tifffile.imwrite(path("b.tif"), np.zeros((20, 31), np.uint16), photometric="minisblack")
    tifffile.imwrite(path("t.tif"), np.ones((2, 5, 6), np.uint16), photometric="minisblack")
    tifffile.imwrite(path("d.tif"), np.ones((5, 6)), photometric="minisblack")
    with open(path("p.csv"), "w") as f:
        f.write("0,1\n")
    with open(path("p_bad.csv"), "w") as f:
        f.write("0,0\n1,zero\n")
    with open(path("p_range.csv"), "w") as f:
        f.write("image,template\n0,0\n0,2\n")
    tiles = lambda *extra: ["tiles", "--images", path("a.tif"), "--templates", path("t.tif"), *extra]
    bad("tiles_shapes", ["tiles", "--images", path("a.tif"), path("b.tif"), "--templates", path("t.tif"),
                         "--pairs", path("p.csv")], "every one must have the same shape", np_=2)
    bad("tiles_range", tiles("--pairs", path("p_range.csv")), "pair (0, 2) is out of range", np_=2)
    bad("tiles_pair_line", tiles("--pairs", path("p_bad.csv")), "line 2 is not two integers")
    bad("tiles_no_pairs", tiles(), "--pairs are required")
    bad("tiles_glob", ["tiles", "--images", path("nothing_*.tif"), "--templates", path("t.tif"), "--pairs",
                       path("p.csv")], "no file matches")
    bad("tiles_not_image", ["tiles", "--images", path("p.csv"), "--templates", path("t.tif"), "--pairs",
                            path("p.csv")], "not a TIFF file")
    bad("tiles_mask_count", tiles("--pairs", path("p.csv"), "--template-masks", path("a.tif")), "masks of")
    bad("tiles_float64", ["tiles", "--images", path("a.tif"), "--templates", path("d.tif"), "--pairs",
                          path("p.csv")], "--float32")
    with open(path("not.mrc"), "wb") as f:
        f.write(b"\0" * 2048)
    bad("not_mrc", ["tiles", "--images", path("a.tif"), "--templates", path("not.mrc"), "--pairs", path("p.csv")],
        "not an MRC file")
    frames = rng.random((7, 3, 4)).astype(np.float32)
    sp = spool("sp", frames, [1.0, 2.0, 3.0], {"AOIHeight": 3, "AOIWidth": 4})
    bad("spool_frames", ["qdmpy", sp], "are not 3 or 6 frames", np_=2)
    with open(path("nometa"), "wb") as f:
        f.write(b"\0" * 64)
    bad("spool_meta", ["qdmpy", path("nometa")], "no metadata file")
    sp2 = spool("sp2", frames[:6], [1.0, 2.0, 3.0], {"Binning": 1})
    bad("spool_aoi", ["qdmpy", sp2], "no AOIHeight and AOIWidth")
    bad("two_inputs_one_file", ["qdmlab", good, good], "-o must be an existing folder")
    p = run(["import", "npy", cube, "--sweep", "1:2:6", "-o", path("exists.h5")], np_=2, expect_rc=2)
    check(p.stderr.count("exists (use --force") == 2, "existing output: not one line per rank:\n" + p.stderr)
    check(os.path.getsize(path("exists.h5")) == 0, "an existing output was touched")
    bad("budget", ["npy", cube, "--sweep", "1:2:6", "--memory-budget", "lots"], "bad size 'lots'")


if __name__ == "__main__":
    e2e.main(globals())
