#!/usr/bin/env python3
"""End-to-end tests of `tessera simulate` and `tessera fit` (run by ctest).

    fit_e2e.py --tessera BUILD/tessera --mpiexec MPIEXEC [--mpiflags "..."] CASE

Each CASE is one ctest test. Needs h5py and numpy (Debian python3-h5py).
"""

import h5py
import numpy as np

import e2e
from e2e import check, datasets, path, run


def simulate(kind, name, *extra):
    run(["simulate", kind, "-o", path(name), "--seed", 7, *extra])
    return path(name)


def centre_errors(sim, fit):
    with h5py.File(sim) as s, h5py.File(fit) as f:
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in f.attrs["param_names"]]
        pos = [n for n in names if n.startswith("pos")]
        truth_ok = np.isfinite(s["truth"][pos[0]][()])
        err = np.max([np.abs(f["params"][n][()] - s["truth"][n][()]) for n in pos], axis=0)
        err[~np.isfinite(err)] = np.inf
        return err[truth_ok], f["state"][()]


def bad_input_(name, args, pattern, np_=2, out=None):
    e2e.bad_input("fit", name, args, pattern, np_=np_, out=out)


# ---- cases ---------------------------------------------------------------------

def case_ranks_bit_identical():
    """The same cube fitted with 1, 2, 3 and 7 ranks: every dataset identical."""
    cube = simulate("odmr", "r.h5", "--size", "14x20", "--peaks", 8)
    ref = None
    for n in (1, 2, 3, 7):
        out = path(f"r{n}.h5")
        run(["fit", cube, "-o", out, "--peaks", 8, "--quiet", "--threads", 1], np_=n)
        with h5py.File(out) as f:
            d = datasets(f)
            check(f.attrs["ranks"] == n, f"ranks attribute {f.attrs['ranks']} != {n}")
        if ref is None:
            ref = d
            continue
        check(d.keys() == ref.keys(), f"{n} ranks: datasets differ: {sorted(d)} vs {sorted(ref)}")
        for k in ref:
            check(np.array_equal(d[k], ref[k], equal_nan=True), f"{n} ranks: /{k} differs from 1 rank")
    print("1, 2, 3, 7 ranks: every dataset bit-identical")
    # More ranks than rows: idle ranks take part in the collective reads and writes.
    small = simulate("odmr", "r_small.h5", "--size", "3x9", "--peaks", 2)
    run(["fit", small, "-o", path("rs1.h5"), "--quiet"])
    run(["fit", small, "-o", path("rs7.h5"), "--quiet"], np_=7)
    with h5py.File(path("rs1.h5")) as a, h5py.File(path("rs7.h5")) as b:
        da, db = datasets(a), datasets(b)
        for k in da:
            check(np.array_equal(da[k], db[k], equal_nan=True), f"7 ranks on 3 rows: /{k} differs")


def case_threads_and_chunks_bit_identical():
    """Thread count and a tiny memory budget (one row per chunk) change no bit."""
    cube = simulate("odmr", "t.h5", "--size", "12x16", "--peaks", 2)
    run(["fit", cube, "-o", path("t_a.h5"), "--quiet", "--threads", 1])
    run(["fit", cube, "-o", path("t_b.h5"), "--quiet", "--threads", 2, "--memory-budget", "1K"], np_=2)
    with h5py.File(path("t_a.h5")) as a, h5py.File(path("t_b.h5")) as b:
        da, db = datasets(a), datasets(b)
        for k in da:
            check(np.array_equal(da[k], db[k], equal_nan=True), f"/{k} differs with threads/chunks")


def chunked_copy(src, name, names):
    """The same datasets stored chunked (8 rows a chunk) and compressed, as h5py
    writes them when asked: such files are read in one piece per chunk of rows."""
    out = path(name)
    with h5py.File(src) as s, h5py.File(out, "w") as f:
        for n in names:
            d = s[n][()]
            chunks = (d.shape[0], min(8, d.shape[1]), d.shape[2]) if d.ndim == 3 else None
            f.create_dataset(n, data=d, chunks=chunks, compression="gzip" if chunks else None)
    return out


def case_block_reads_bit_identical():
    """Wide images are read in blocks of rows (about 1 MiB each: 6 rows of a
    20 x 400 x 101 cube; 1 row for sig/ref binned 2 x 2), chunked inputs in one
    piece: 1, 2, 3 and 7 ranks, small chunks and the chunked copy give the same
    bits."""
    cube = simulate("odmr", "w.h5", "--size", "20x400", "--peaks", 2, "--sweep-points", 101)
    chunked = chunked_copy(cube, "w_chunked.h5", ["data", "sweep"])
    runs = [(cube, 1, []), (cube, 2, []), (cube, 3, []), (cube, 7, []), (cube, 3, ["--memory-budget", "2M"]),
            (chunked, 1, []), (chunked, 2, ["--memory-budget", "2M"])]
    sig = simulate("odmr", "w_sig.h5", "--size", "20x400", "--peaks", 2, "--sweep-points", 101, "--photons", 100000)
    sig_chunked = chunked_copy(sig, "w_sig_chunked.h5", ["sig", "ref", "sweep"])
    sigref = ["--sig", "/sig", "--ref", "/ref", "--bin", 2]
    runs_sr = [(sig, 1, sigref), (sig, 3, sigref), (sig_chunked, 2, sigref)]
    for group in (runs, runs_sr):
        ref = None
        for k, (src, n, extra) in enumerate(group):
            out = path(f"w_{id(group)}_{k}.h5")
            run(["fit", src, "-o", out, "--peaks", 2, "--quiet", "--threads", 1, *extra], np_=n)
            with h5py.File(out) as f:
                d = datasets(f)
            if ref is None:
                ref = d
                check(np.mean(d["state"] == 0) > 0.9, f"only {np.mean(d['state'] == 0):.2f} converged")
                continue
            for name in ref:
                check(np.array_equal(d[name], ref[name], equal_nan=True),
                      f"{src} with {n} ranks {extra}: /{name} differs from the first run")
    print("contiguous in blocks, chunked in one piece, 1-7 ranks, small chunks, sig/ref binned: identical")


def truth_as_fit(cube, name):
    """A file shaped like a fit output whose parameters are the simulation's truth,
    for --guess: fits started at the truth, the reference for the starts."""
    out = path(name)
    with h5py.File(cube) as s, h5py.File(out, "w") as f:
        for n in s["truth"]:
            if not n.startswith("bnv"):
                f[f"params/{n}"] = s["truth"][n][()]
    return out


def case_accuracy_8_peaks():
    """8 peaks whose outer lines move +-10 MHz, and a dipole: < 0.2 % of pixels with a
    centre > 5 MHz off, and no worse than fits started at the truth."""
    cube = simulate("odmr", "a8.h5", "--size", "48x64", "--peaks", 8, "--gradient", 20)
    out, ref = path("a8_fit.h5"), path("a8_truth_fit.h5")
    run(["fit", cube, "-o", out, "--peaks", 8, "--quiet"], np_=2)
    run(["fit", cube, "-o", ref, "--peaks", 8, "--quiet", "--guess", truth_as_fit(cube, "a8_t.h5")])
    err, state = centre_errors(cube, out)
    err_t, _ = centre_errors(cube, ref)
    bad, bad_t = np.mean(err > 5), np.mean(err_t > 5)
    print(f"8 peaks: {100 * bad:.3f} % of pixels with a centre > 5 MHz off ({100 * bad_t:.3f} % "
          f"when started at the truth), median max error {np.median(err):.3f} MHz "
          f"({np.median(err_t):.3f}), states {np.bincount(state.ravel(), minlength=6)}")
    check(bad < 0.002, f"{100 * bad:.3f} % of pixels off by > 5 MHz (limit 0.2 %)")
    check(bad <= bad_t + 0.0005, "automatic starts lose more pixels than starts at the truth")
    check(np.median(err) <= 1.05 * np.median(err_t), "median error above the truth-started fit's")


def case_accuracy_2_peaks():
    cube = simulate("odmr", "a2.h5", "--size", "48x64", "--peaks", 2)
    out = path("a2_fit.h5")
    run(["fit", cube, "-o", out, "--quiet"])
    err, state = centre_errors(cube, out)
    bad = np.mean(err > 5)
    print(f"2 peaks: {100 * bad:.3f} % off by > 5 MHz, median {np.median(err):.3f} MHz")
    check(bad <= 0.001, f"{100 * bad:.3f} % of pixels off by > 5 MHz (limit 0.1 %)")


def case_bad_pixels_get_state_3():
    cube = simulate("odmr", "b.h5", "--size", "30x30", "--peaks", 2, "--bad-fraction", 0.02)
    out = path("b_fit.h5")
    run(["fit", cube, "-o", out, "--quiet"])
    with h5py.File(cube) as s, h5py.File(out) as f:
        data = s["data"][()]
        dead = np.all(data == 0, axis=0)
        state = f["state"][()]
        check(dead.sum() > 0, "the simulation has no dead pixel")
        check(np.all(state[dead] == 3), "dead pixels are not state 3")
        check(np.all(np.isnan(f["params"]["pos0"][()][dead])), "dead pixels have numbers")


def case_sig_ref_bin_roi_fix_bound():
    cube = simulate("odmr", "s.h5", "--size", "24x24", "--peaks", 2, "--photons", 20000)
    out = path("s_fit.h5")
    run(["fit", cube, "-o", out, "--sig", "/sig", "--ref", "/ref", "--roi", "2:22,4:24", "--bin", 2,
         "--fix", "offset=1", "--bound", "fwhm0=5:20", "--quiet"])
    with h5py.File(out) as f:
        check(f["state"].shape == (10, 10), f"binned ROI shape {f['state'].shape} != (10, 10)")
        ok = f["state"][()] == 0
        check(ok.mean() > 0.9, f"only {ok.mean():.2f} converged")
        check(np.all(f["params"]["offset"][()][ok] == 1.0), "fixed offset moved")
        fw = f["params"]["fwhm0"][()][ok]
        check(np.all((fw >= 5) & (fw <= 20)), "bound on fwhm0 violated")
        check("bnv0" in f["derived"], "no B map")


def case_guess_from_previous_fit():
    cube = simulate("odmr", "g.h5", "--size", "16x16", "--peaks", 2)
    run(["fit", cube, "-o", path("g1.h5"), "--quiet"])
    run(["fit", cube, "-o", path("g2.h5"), "--guess", path("g1.h5"), "--quiet"])
    with h5py.File(path("g1.h5")) as a, h5py.File(path("g2.h5")) as b:
        ok = a["state"][()] == 0
        d = np.abs(a["params"]["pos0"][()] - b["params"]["pos0"][()])[ok]
        check(np.all(d < 0.05), f"restarting from a converged fit moved pos0 by up to {d.max()}")
        check(np.mean(b["iterations"][()][ok]) < np.mean(a["iterations"][()][ok]),
              "restarting from a converged fit did not take fewer iterations")


def case_concurrent_single_runs():
    """Several `tessera fit` started at once without a launcher (MPI singletons, as
    a workstation user or a notebook starts them) all succeed, and each leaves
    nothing in the temporary directory. Open MPI gives every isolated singleton
    the same session directory; the first to finish removed it while another
    opened its input there (about 1 in 80 runs failed with 4 at once)."""
    import os
    import subprocess
    cube = simulate("odmr", "c.h5", "--size", "8x8", "--peaks", 2)
    tmp = path("tmpdir")
    os.mkdir(tmp)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMPI_MCA_orte_tmpdir", "OMPI_COMM", "PMI"))}
    env["TMPDIR"] = tmp
    failures = []
    for r in range(25):
        procs = [subprocess.Popen([e2e.ARGS.tessera, "fit", cube, "-o", path(f"c{k}.h5"), "--quiet", "--force"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
                 for k in range(4)]
        for p in procs:
            _, err = p.communicate(timeout=120)
            if p.returncode != 0:
                failures.append(f"round {r}: exit {p.returncode}: {err.strip()}")
    check(not failures, f"{len(failures)} of 100 concurrent runs failed:\n" + "\n".join(failures[:3]))
    left = os.listdir(tmp)
    check(not left, f"left in TMPDIR: {left}")


def case_decay_models():
    for kind, model in (("t1", "stretched_exp"), ("rabi", "damped_cosine")):
        cube = simulate(kind, f"{kind}.h5", "--size", "16x16")
        out = path(f"{kind}_fit.h5")
        run(["fit", cube, "-o", out, "--model", model, "--quiet"])
        with h5py.File(cube) as s, h5py.File(out) as f:
            key = "t1" if kind == "t1" else "freq"
            t, p = s["truth"][key][()], f["params"][key][()]
            ok = np.isfinite(t)
            rel = np.abs(p[ok] / t[ok] - 1)
            print(f"{model}: median relative error of {key} {np.median(rel):.4f}, "
                  f"converged {np.mean(f['state'][()] == 0):.3f}")
            check(np.median(rel) < 0.05, f"{model}: median relative error {np.median(rel)}")


def case_backend_selection():
    """--backend auto falls back to the CPU in one line when no GPU is seen; --backend
    cuda then fails with exit 2 on every rank and writes nothing. With a GPU, the GPU
    fit agrees with the CPU's."""
    cube = simulate("odmr", "be.h5", "--size", "8x12", "--peaks", 2)
    if not e2e.has_gpu():
        e2e.check_cpu_fallback("fit", [cube], path("be_auto.h5"))
        bad_input_("backend_cuda", [cube, "--backend", "cuda"], "--backend cuda")
        # --gpu-kernel is checked, and ignored by the CPU backend.
        run(["fit", cube, "-o", path("be_kernel.h5"), "--gpu-kernel", "warp", "--quiet"])
        with h5py.File(path("be_kernel.h5")) as f:
            check("gpu_kernel" not in f.attrs, "a CPU fit records a gpu_kernel")
        print("no GPU: auto used the CPU, cuda refused, --gpu-kernel ignored")
        return
    run(["fit", cube, "-o", path("be_cpu.h5"), "--backend", "cpu", "--quiet"])
    run(["fit", cube, "-o", path("be_gpu.h5"), "--backend", "cuda", "--quiet"])
    with h5py.File(path("be_cpu.h5")) as a, h5py.File(path("be_gpu.h5")) as b:
        check(b.attrs["backend"] == "cuda", "backend attribute is not cuda")
        same = np.mean(a["state"][()] == b["state"][()])
        check(same >= 0.99, f"CPU and GPU states agree on {same:.3f} of pixels only")
        ok = (a["state"][()] == 0) & (b["state"][()] == 0)
        d = np.abs(a["params"]["pos0"][()] - b["params"]["pos0"][()])[ok]
        check(np.all(d <= 0.2 * a["sigma"]["pos0"][()][ok]), "GPU centres differ from the CPU's")
        check(b.attrs["gpu_kernel"] == "thread per fit", "2 peaks: not one thread per fit")
    # 8 peaks: warp per fit by default, thread per fit on request; both agree with the CPU.
    cube8 = simulate("odmr", "be8.h5", "--size", "8x12", "--peaks", 8)
    run(["fit", cube8, "-o", path("be8_cpu.h5"), "--peaks", 8, "--backend", "cpu", "--quiet"])
    for kernel, name in (("auto", "warp per fit"), ("thread", "thread per fit")):
        out = path(f"be8_{kernel}.h5")
        run(["fit", cube8, "-o", out, "--peaks", 8, "--backend", "cuda", "--gpu-kernel", kernel,
             "--quiet"])
        with h5py.File(path("be8_cpu.h5")) as a, h5py.File(out) as b:
            check(b.attrs["gpu_kernel"] == name, f"--gpu-kernel {kernel}: {b.attrs['gpu_kernel']}")
            same = np.mean(a["state"][()] == b["state"][()])
            check(same >= 0.99, f"{name}: CPU and GPU states agree on {same:.3f} of pixels only")
            ok = (a["state"][()] == 0) & (b["state"][()] == 0)
            for k in range(8):
                d = np.abs(a["params"][f"pos{k}"][()] - b["params"][f"pos{k}"][()])[ok]
                check(np.all(d <= 0.2 * a["sigma"][f"pos{k}"][()][ok]),
                      f"{name}: GPU pos{k} differs from the CPU's")


def case_bad_inputs():
    good = simulate("odmr", "good.h5", "--size", "6x6", "--peaks", 2)
    with h5py.File(path("bad.h5"), "w") as f:
        f["flat"] = np.zeros((10, 10), np.float32)
        f["text"] = np.array([b"abc"] * 3)
        f["empty"] = np.zeros((0, 4, 4), np.float32)
        f["cube"] = np.ones((20, 4, 4), np.float32)
        f["sweep"] = np.linspace(2800, 2900, 20)
        f["short"] = np.linspace(2800, 2900, 19)
        f["nan_sweep"] = np.where(np.arange(20) == 3, np.nan, np.linspace(2800, 2900, 20))
        f["few"] = np.ones((5, 4, 4), np.float32)
        f["few_sweep"] = np.linspace(2800, 2900, 5)
        f["strings"] = np.array([[[b"x"]]])
    with open(path("not.h5"), "w") as f:
        f.write("not hdf5\n")
    bad = path("bad.h5")
    bad_input_("missing_file", [path("nope.h5")], "no such file")
    bad_input_("gpu_kernel", [good, "--gpu-kernel", "block"], "--gpu-kernel must be")
    bad_input_("not_hdf5", [path("not.h5")], "not an HDF5 file")
    bad_input_("missing_dataset", [good, "--data", "/nothing"], "/nothing")
    bad_input_("not_3d", [bad, "--data", "/flat"], "dimensions")
    bad_input_("non_numeric", [bad, "--data", "/strings", "--sweep", "/sweep"], "/strings")
    bad_input_("empty", [bad, "--data", "/empty", "--sweep", "/sweep"], "empty")
    bad_input_("sweep_missing", [bad, "--data", "/cube", "--sweep", "/none"], "/none")
    bad_input_("sweep_mismatch", [bad, "--data", "/cube", "--sweep", "/short"], "sweep points")
    bad_input_("sweep_nonfinite", [bad, "--data", "/cube", "--sweep", "/nan_sweep"], "non-finite")
    bad_input_("too_few_points", [bad, "--data", "/few", "--sweep", "/few_sweep"], "free parameters")
    bad_input_("unknown_model", [good, "--model", "voigt"], "unknown model")
    bad_input_("zero_peaks", [good, "--peaks", 0], "--peaks")
    bad_input_("bad_fix", [good, "--fix", "nope=1"], "unknown parameter")
    run(["fit", good, "-o", path("exists.h5"), "--quiet"])
    p = run(["fit", good, "-o", path("exists.h5")], np_=2, expect_rc=2)
    check("exists" in p.stderr, "existing output not refused:\n" + p.stderr)


TWO_LORENTZIANS = ("offset + amp0 / (1 + ((x - pos0) / (fwhm0 / 2))^2)"
                   " + amp1 / (1 + ((x - pos1) / (fwhm1 / 2))^2)")
TWO_PARAMS = "offset,pos0,fwhm0,amp0,pos1,fwhm1,amp1"


def case_user_model_expression():
    """--expr: the 2-Lorentzian model written out fits like --model lorentzian
    --peaks 2 (same states, centres within 0.05 MHz, same accuracy), bit-identical
    on 1 and 3 ranks; its bad inputs get one line per rank and exit 2."""
    import os
    os.environ["TESSERA_CACHE"] = path("cache")  # the model cache of this case
    cube = simulate("odmr", "u.h5", "--size", "16x20", "--peaks", 2)
    with h5py.File(cube) as f:
        p0, p1 = (float(np.nanmedian(f["truth"][n][()])) for n in ("pos0", "pos1"))
    # Starts a few MHz off the lines (the mean spectrum's fit starts there).
    start = f"offset=1,pos0={p0 + 4},fwhm0=8,amp0=-0.01,pos1={p1 - 4},fwhm1=8,amp1=-0.01"
    expr = ["--expr", TWO_LORENTZIANS, "--params", TWO_PARAMS, "--start", start]
    run(["fit", cube, "-o", path("builtin.h5"), "--quiet"])
    run(["fit", cube, "-o", path("expr1.h5"), "--quiet", *expr])
    run(["fit", cube, "-o", path("expr3.h5"), "--quiet", *expr], np_=3)
    with h5py.File(path("builtin.h5")) as a, h5py.File(path("expr1.h5")) as b, h5py.File(path("expr3.h5")) as c:
        check(b.attrs["model"] == "expression", "model attribute")
        check(np.array_equal(a["state"][()], b["state"][()]), "states differ from the built-in model's")
        ok = a["state"][()] == 0
        check(ok.mean() > 0.9, f"only {ok.mean():.2f} converged")
        for n in ("pos0", "pos1"):
            d = np.abs(a["params"][n][()] - b["params"][n][()])[ok]
            check(np.all(d < 0.05), f"{n} differs from the built-in model's by up to {d.max()}")
        for name, x in datasets(b).items():
            check(np.array_equal(x, c[name][()], equal_nan=True), f"{name}: 1 and 3 ranks differ")
    err_a, _ = centre_errors(cube, path("builtin.h5"))
    err_b, _ = centre_errors(cube, path("expr1.h5"))
    check(abs(np.median(err_a) - np.median(err_b)) < 0.01, "accuracy differs from the built-in model's")

    def bad(name, args, pattern):
        bad_input_(name, [cube, *args], pattern)
    other = ["--params", TWO_PARAMS, "--start", start]
    bad("expr_syntax", ["--expr", "offset + amp0 / (1 + (x - pos0", *other], "unbalanced '(' opened at position 22")
    bad("expr_unknown_name", ["--expr", TWO_LORENTZIANS + " + k", *other], "unknown name 'k'")
    bad("expr_unknown_function", ["--expr", "voigt(x) + " + TWO_LORENTZIANS, *other], "unknown function 'voigt'")
    bad("expr_unused", ["--expr", TWO_LORENTZIANS, "--params", TWO_PARAMS + ",extra", "--start", start + ",extra=1"],
        "'extra' is listed but the expression does not use it")
    bad("expr_start_missing", ["--expr", TWO_LORENTZIANS, "--params", TWO_PARAMS, "--start", "offset=1"],
        "--start: no value for 'pos0'")
    bad("expr_empty", ["--expr", " ", *other], "empty expression")
    bad("expr_fix_unknown", ["--expr", TWO_LORENTZIANS, *other, "--fix", "width=1"], "unknown parameter 'width'")
    bad("params_without_expr", ["--params", "a,b"], "give it with --expr")


def triplet(x, c, fwhm, amp, spacing=2.158):
    w = fwhm / 2
    return amp * sum(1 / (1 + ((x - c + k * spacing) / w) ** 2) for k in (-1, 0, 1))


def case_user_model_starts():
    """Starts for a model of one's own (fit/cell_starts.hpp): a noisy 14N triplet
    whose centre moves 15 linewidths (7 hyperfine spacings) across the image,
    with a dipole of 4 linewidths, fitted from one --start. A pixel is lost when
    its centre is half a spacing or more off (another minimum); one lost where
    the fit started from the truth is not lost is a failure of the starts
    unless its chi-square is no worse: at most 0.2 % of pixels (the mean
    spectrum's start alone fails about 2 % here). The same bits on 1, 2, 3
    and 7 ranks, with chunks of a few rows."""
    import os
    os.environ["TESSERA_CACHE"] = path("cache")
    rng = np.random.default_rng(1)
    ny, nx = 64, 80
    x = np.arange(2843.0, 2897.0, 0.15)
    yy, xx = np.mgrid[0:ny, 0:nx]
    pos = 2870 + 30 * ((xx / (nx - 1) - 0.5) * 0.8 + (yy / (ny - 1) - 0.5) * 0.6)
    pos = pos + 4.0 * np.exp(-((yy - 0.3 * ny) ** 2 + (xx - 0.7 * nx) ** 2) / 24.0)
    cube = 1 - triplet(x[:, None, None], pos, 1.0, 0.01) + rng.normal(0, 6e-3, (len(x), ny, nx))
    with h5py.File(path("moving.h5"), "w") as f:
        f["data"] = cube.astype(np.float32)
        f["sweep"] = x
    with h5py.File(path("truth.h5"), "w") as f:
        for name, v in (("offset", 1.0), ("pos", pos), ("fwhm", 1.0), ("amp", 0.01)):
            f[f"params/{name}"] = np.broadcast_to(np.float32(v), (ny, nx)).astype(np.float32)
    args = ["fit", path("moving.h5"), "--model", "esr14n", "--quiet"]
    run([*args, "-o", path("moving1.h5"), "--start", "pos=2870"])
    run([*args, "-o", path("from_truth.h5"), "--guess", path("truth.h5")])
    for np_ in (2, 3, 7):
        run([*args, "-o", path(f"moving{np_}.h5"), "--start", "pos=2870", "--memory-budget", "400K"], np_=np_)
    with h5py.File(path("moving1.h5")) as a, h5py.File(path("from_truth.h5")) as t:
        lost = ~(np.abs(a["params"]["pos"][()] - pos) < 2.158 / 2)
        lost_t = ~(np.abs(t["params"]["pos"][()] - pos) < 2.158 / 2)
        failed = lost & ~lost_t & ~(a["chi2"][()] <= t["chi2"][()])
        check(failed.mean() <= 0.002,
              f"the starts failed {failed.sum()} of {failed.size} pixels ({100 * failed.mean():.2f} %)")
        check((a["state"][()] == 0).all(), "not every pixel converged")
        for np_ in (2, 3, 7):
            with h5py.File(path(f"moving{np_}.h5")) as b:
                for name, v in datasets(a).items():
                    check(np.array_equal(v, b[name][()], equal_nan=True), f"{name}: 1 and {np_} ranks differ")


def case_user_model_files():
    """--model esr14n_pair (a shipped model file) on a cube of two 14N triplets in
    two frequency windows: B111 and D as derived maps, within noise of the truth,
    1 = 2 ranks bit for bit; a model file of the user's (bi-exponential) with a
    derived map; bad model files and names."""
    import os
    os.environ["TESSERA_CACHE"] = path("cache")
    rng = np.random.default_rng(5)
    ny, nx = 12, 14
    x = np.concatenate([np.linspace(2785, 2815, 61), np.linspace(2925, 2955, 61)])
    yy, xx = np.mgrid[0:ny, 0:nx]
    lo = 2800 - 0.4 * (xx / nx - 0.5) - 0.2 * (yy / ny)
    hi = 2940 + 0.4 * (xx / nx - 0.5) + 0.2 * (yy / ny)
    cube = 1 - triplet(x[:, None, None], lo, 1.0, 0.004) - triplet(x[:, None, None], hi, 1.0, 0.004)
    cube = cube + rng.normal(0, 5e-4, cube.shape)
    with h5py.File(path("pair.h5"), "w") as f:
        f["data"] = cube.astype(np.float32)
        f["sweep"] = x
        f.attrs["x_unit"] = "MHz"
    args = ["fit", path("pair.h5"), "--model", "esr14n_pair", "--start", "pos_lo=2800.2,pos_hi=2939.8", "--quiet"]
    run([*args, "-o", path("pair1.h5")])
    run([*args, "-o", path("pair2.h5")], np_=2)
    with h5py.File(path("pair1.h5")) as a, h5py.File(path("pair2.h5")) as b:
        check(a.attrs["model"] == "esr14n_pair", "model attribute")
        for name, v in datasets(a).items():
            check(np.array_equal(v, b[name][()], equal_nan=True), f"{name}: 1 and 2 ranks differ")
        ok = a["state"][()] == 0
        check(ok.mean() > 0.95, f"only {ok.mean():.2f} converged")
        b111 = a["derived"]["b111"][()]
        truth = (hi - lo) / (2 * 28.024)
        err = np.abs(b111 - truth)[ok]
        check(np.median(err) < 2e-3 and err.max() < 1e-2, f"B111 off by up to {err.max():.4f} mT")
        d = np.abs(a["derived"]["d"][()] - (hi + lo) / 2)[ok]
        check(d.max() < 0.2, f"D off by up to {d.max():.3f} MHz")
        check(a.attrs["param_units"][1] == "MHz", "pos_lo's unit is not the sweep's")

    # A model file of the user's: a bi-exponential decay, with a derived ratio.
    t = np.linspace(5, 3000, 60)
    fast, slow = 200 + 50 * (xx / nx), 1500 + 300 * (yy / ny)
    t1 = 0.1 + 0.5 * np.exp(-t[:, None, None] / fast) + 0.4 * np.exp(-t[:, None, None] / slow)
    with h5py.File(path("t1.h5"), "w") as f:
        f["data"] = (t1 + rng.normal(0, 1e-3, t1.shape)).astype(np.float32)
        f["sweep"] = t
    with open(path("biexp.model"), "w") as f:
        f.write("# two T1 populations\n"
                "param offset start=baseline unit=y\n"
                "param a1 start=0.5 unit=y\nparam t_fast start=150 unit=x bound=1:1e5\n"
                "param a2 start=0.5 unit=y\nparam t_slow start=1200 unit=x bound=1:1e5\n"
                "let e1 = exp(-x / t_fast)\n"
                "value = offset + a1 * e1 + a2 * exp(-x / t_slow)   # the decay\n"
                "derive ratio = t_slow / t_fast\n")
    run(["fit", path("t1.h5"), "-o", path("biexp.h5"), "--model-file", path("biexp.model"), "--quiet",
         "--derive", "total=a1 + a2"])
    with h5py.File(path("biexp.h5")) as f:
        ok = f["state"][()] == 0
        check(ok.mean() > 0.9, f"bi-exponential: only {ok.mean():.2f} converged")
        p = {n: f["params"][n][()] for n in ("a1", "a2", "t_fast", "t_slow")}
        ratio = (p["t_slow"] / p["t_fast"])[ok]
        check(np.allclose(f["derived"]["ratio"][()][ok], ratio, rtol=1e-6), "ratio is not t_slow / t_fast")
        check(np.allclose(f["derived"]["total"][()][ok], (p["a1"] + p["a2"])[ok], rtol=1e-6), "total")
        e = np.abs(p["t_fast"] - fast)[ok] / fast[ok]
        check(np.median(e) < 0.05, f"t_fast off by {np.median(e):.3f} (median relative)")

    def bad_file(name, text, pattern):
        with open(path(name + ".model"), "w") as f:
            f.write(text)
        bad_input_(name, [path("t1.h5"), "--model-file", path(name + ".model")], pattern)
    bad_file("mf_unknown_line", "param a start=1\nvalue = a * x\nfoo = 1\n", "mf_unknown_line.model:3: unknown line 'foo'")
    bad_file("mf_no_value", "param a start=1\n", "no value line")
    bad_file("mf_bad_start", "param a start=one\nvalue = a * x\n", "mf_bad_start.model:1: 'one' is not a number")
    bad_file("mf_syntax", "param a start=1\nvalue = a * (x\n", "unbalanced '('")
    bad_file("mf_no_start", "param a\nvalue = a * x\n", "--start: no value for 'a'")
    bad_input_("mf_missing", [path("t1.h5"), "--model-file", path("nope.model")], "cannot read the model file")
    bad_input_("model_unknown", [path("t1.h5"), "--model", "esr99n"], "shipped: esr14n, esr14n_pair")
    bad_input_("pair_no_start", [path("pair.h5"), "--model", "esr14n_pair"], "--start: no value for 'pos_lo'")
    bad_input_("derive_uses_x", [path("pair.h5"), "--model", "esr14n_pair", "--start", "pos_lo=2800,pos_hi=2940",
                                 "--derive", "bad=x * pos_lo"], "derive bad: uses x")


if __name__ == "__main__":
    e2e.main(globals())
