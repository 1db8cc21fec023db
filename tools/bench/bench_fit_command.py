"""tessera fit (the whole command) against its own engine on the same spectra, one run.

Two cubes from `tessera simulate odmr` (noise 2e-3, 1 % dips of 9 MHz, the
default gradient and bad pixels):
  - A: 512 x 512 pixels, 2 dips, 100 sweep points;
  - B: 128 x 128 pixels, 8 dips, 201 sweep points.
For each, with --threads 1 (one rank):
  - command: `tessera fit CUBE` with its automatic starts, timed from process
    start to exit (reading, starts, fits, writing);
  - engine: `tessera fit CUBE --guess TRUTH` started from the true parameters,
    its fit stage only (the output's seconds_read_fit_write[1]): the batch
    engine's rate on these spectra, with no starts to compute;
  - the ratio command / engine (pixels per second), the same without the
    process's start-up (`tessera --version`: MPI's singleton start, about 0.3 s
    here), and the pixels lost (any centre more than half a linewidth from the
    truth, or not fitted) by each.
Each timing is the best of --repeats runs. --other LABEL=PATH (repeatable)
times another tessera binary on the same cubes in the same run, interleaved.
With bench_fit (built with Ceres; --bench-fit PATH, by default beside the
tessera binary in tools/bench/), Ceres fits --ceres-pixels pixels of the same
cube (spread over the image, finite data and truth), started from the truth,
in the same run, and the command's rate is given against Ceres's: a start at
the truth is the most Ceres can be given, so the ratio is a lower bound.
The CPU (AVX-512 or AVX2) is printed: the engine's lanes differ.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np

CASES = {
    "A": dict(size="512x512", peaks=2, points=100),
    "B": dict(size="128x128", peaks=8, points=201),
}


def cpu():
    flags = open("/proc/cpuinfo").read()
    model = next((l.split(":", 1)[1].strip() for l in flags.splitlines() if l.startswith("model name")), "?")
    simd = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "SSE"
    return f"{model} ({simd})"


def run(cmd):
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - t0


def truth_as_guess(cube, out):
    with h5py.File(cube) as f, h5py.File(out, "w") as g:
        for name, d in f["truth"].items():
            if name.startswith("bnv"):
                continue
            g[f"params/{name}"] = np.nan_to_num(d[()].astype(np.float32), nan=1.0)


def ceres_rate(bench_fit, cube, peaks, n, tmp, name):
    """Ceres's pixels per second (bench_fit --spectra) on n pixels of the cube,
    started from the truth; None without bench_fit."""
    if not bench_fit or not os.path.exists(bench_fit):
        return None, "no bench_fit (Ceres) found"
    with h5py.File(cube) as f:
        data = f["data"][()]
        names = ["offset"] + [f"{q}{k}" for k in range(peaks) for q in ("pos", "fwhm", "amp")]
        truth = np.stack([f["truth"][q][()] for q in names], axis=-1).reshape(-1, len(names))
        x = f["sweep"][()].astype(np.float32)
    y = data.reshape(data.shape[0], -1).T
    ok = np.flatnonzero(np.all(np.isfinite(truth), axis=1) & np.all(np.isfinite(y), axis=1) &
                        np.any(y != 0, axis=1))
    pick = ok[np.linspace(0, ok.size - 1, min(n, ok.size)).astype(int)]
    prefix = os.path.join(tmp, f"{name}_ceres")
    x.tofile(prefix + ".x")
    np.ascontiguousarray(y[pick], np.float32).tofile(prefix + ".y")
    np.ascontiguousarray(truth[pick], np.float32).tofile(prefix + ".start")
    p = subprocess.run([bench_fit, "--spectra", prefix, "--peaks", str(peaks), "--min-time", "1", "--rounds", "2"],
                       check=True, capture_output=True, text=True)
    line = p.stdout.strip().splitlines()[-1]
    return float(line.split("Ceres ")[1].split(" px/s")[0]), line


def lost(cube, fit):
    with h5py.File(cube) as t, h5py.File(fit) as f:
        bad = f["state"][()] > 1
        k = 0
        while f"pos{k}" in t["truth"]:
            err = np.abs(f["params"][f"pos{k}"][()] - t["truth"][f"pos{k}"][()])
            bad |= ~(err < t["truth"][f"fwhm{k}"][()] / 2)
            k += 1
        return bad.mean()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tessera", required=True)
    ap.add_argument("--other", action="append", default=[], help="LABEL=PATH of another tessera binary")
    ap.add_argument("--case", choices=["A", "B", "all"], default="all")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--bench-fit", help="bench_fit (Ceres); default: tools/bench/bench_fit beside --tessera")
    ap.add_argument("--ceres-pixels", type=int, default=0, help="pixels Ceres fits (default A 2000, B 300)")
    a = ap.parse_args()
    bench_fit = a.bench_fit or os.path.join(os.path.dirname(os.path.abspath(a.tessera)), "tools", "bench",
                                            "bench_fit")
    binaries = [("this", a.tessera)] + [tuple(o.split("=", 1)) for o in a.other]
    print(f"CPU: {cpu()}; one thread, one rank; best of {a.repeats}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in (CASES if a.case == "all" else [a.case]):
            c = CASES[name]
            cube, truth = os.path.join(tmp, f"{name}.h5"), os.path.join(tmp, f"{name}_truth.h5")
            run([a.tessera, "simulate", "odmr", "-o", cube, "--size", c["size"], "--peaks", str(c["peaks"]),
                 "--sweep-points", str(c["points"]), "--seed", "3", "--force"])
            truth_as_guess(cube, truth)
            n_pix = np.prod([int(v) for v in c["size"].split("x")])
            common = ["--peaks", str(c["peaks"]), "--threads", "1", "--quiet", "--force"]
            best = {}
            for _ in range(a.repeats):
                for label, exe in binaries:
                    best[label, "startup"] = min(best.get((label, "startup"), 1e9), run([exe, "--version"]))
                    out = os.path.join(tmp, f"{name}_{label}.h5")
                    t = run([exe, "fit", cube, "-o", out, *common])
                    best[label, "command"] = min(best.get((label, "command"), 1e9), t)
                    best[label, "lost"] = lost(cube, out)
                    eng = os.path.join(tmp, f"{name}_{label}_engine.h5")
                    run([exe, "fit", cube, "-o", eng, "--guess", truth, *common])
                    with h5py.File(eng) as f:
                        t_fit = float(f.attrs["seconds_read_fit_write"][1])
                    best[label, "engine"] = min(best.get((label, "engine"), 1e9), t_fit)
                    best[label, "engine_lost"] = lost(cube, eng)
            ceres, ceres_line = ceres_rate(bench_fit, cube, c["peaks"],
                                           a.ceres_pixels or (2000 if name == "A" else 300), tmp, name)
            print(f"\ncase {name}: {c['size']} pixels, {c['peaks']} dips, {c['points']} points")
            print(f"Ceres: {ceres_line}")
            print(f"{'binary':>10} {'command px/s':>13} {'engine px/s':>12} {'ratio':>6} {'w/o start-up':>13}"
                  f" {'vs Ceres':>9} {'lost':>8} {'lost from truth':>16}")
            for label, _ in binaries:
                cmd = n_pix / best[label, "command"]
                eng = n_pix / best[label, "engine"]
                warm = n_pix / (best[label, "command"] - best[label, "startup"])
                vs = f"{cmd / ceres:8.1f}x" if ceres else f"{'-':>9}"
                print(f"{label:>10} {cmd:13.0f} {eng:12.0f} {cmd / eng:6.2f} {warm / eng:13.2f} {vs} "
                      f"{100 * best[label, 'lost']:7.3f}% {100 * best[label, 'engine_lost']:15.3f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
