"""tessera xcorr (the whole command) against OpenCV matchTemplate, same pairs, one run.

Default case (issue 4): 24 images 1024x1024, 24 templates 256x256, 160 pairs,
from `tessera simulate xcorr` (tiles of a textured specimen; matching pairs
first, then random ones). Both sides use both cores:
  - OpenCV: cv2.matchTemplate(image, template, TM_CCOEFF_NORMED) + cv2.minMaxLoc
    per pair, the images and templates already in memory as float32 (file
    reading not counted), two ways: one process with OpenCV's own threads
    (cv2.setNumThreads), and a pool of --cores processes with one thread each
    over interleaved pairs; the faster is the baseline. OpenCV computes less:
    the valid-mode map only, (H-h+1) x (W-w+1), against tessera's full
    (H+h-1) x (W+w-1).
  - tessera: the whole command, reading the HDF5 file and writing the output,
    with 1 rank x N threads and N ranks x 1 thread.
Each timing is the best of --repeats runs. Agreement: for pairs whose OpenCV
peak lies in the interior of its map, tessera --mode valid finds the same
coordinates (minus (h-1, w-1)) and a peak within 1e-4.

--other LABEL=PATH (repeatable) times another tessera binary (an earlier build,
say) on the same configurations in the same run, its runs interleaved with
this one's, so that a before/after comparison shares the machine's state.
"""
import argparse
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time

import cv2
import h5py
import numpy as np


_IMGS = _TPLS = None


def _cv_pool_init(imgs, tpls):
    global _IMGS, _TPLS
    cv2.setNumThreads(1)
    _IMGS, _TPLS = imgs, tpls


def _cv_pairs(chunk):
    out = []
    for q, i, j in chunk:
        m = cv2.matchTemplate(_IMGS[i], _TPLS[j], cv2.TM_CCOEFF_NORMED)
        _, mx, _, loc = cv2.minMaxLoc(m)
        out.append((q, loc[1], loc[0], mx, m.shape))
    return out


def add_masks(data):
    """Image masks: a vertical stripe of 8 % of the columns (charging) and 1 %
    specks; template masks: a corner block of 1/16 and 1 % specks."""
    with h5py.File(data, "a") as f:
        if "image_masks" in f:
            return
        rng = np.random.default_rng(15)
        n, H, W = f["images"].shape
        k, h, w = f["templates"].shape
        mi = (rng.random((n, H, W)) > 0.01).astype(np.uint8)
        for i in range(n):
            x0 = int(rng.integers(0, W - W // 12))
            mi[i, :, x0:x0 + W // 12] = 0
        mt = (rng.random((k, h, w)) > 0.01).astype(np.uint8)
        mt[:, :h // 4, :w // 4] = 0
        f["image_masks"] = mi
        f["template_masks"] = mt


def run(cmd):
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - t0


def fft_floor(a, out, pairs, cv_best, timings):
    """The fastest the command could be if all but FFTW's transforms took no
    time (xcorr_fft_floor, built beside tessera in tools/): the transforms on
    one core, spread perfectly over the cores, plus this run's reading and
    process start-up. A bound: tessera cannot beat it without faster
    transforms. Masked runs: their inverse transforms alone (three double
    ones a pair with one masked side, six with two) against the unmasked run."""
    exe = os.path.join(os.path.dirname(os.path.abspath(a.tessera)), "tools", "xcorr_fft_floor")
    if not os.path.exists(exe):
        print(f"(no FFT floor: {exe} not built)")
        return
    with h5py.File(out + ".fw.h5", "r") as f:
        py, px = (int(v) for v in f.attrs["fft_size"])
        read = float(f.attrs["seconds_read_correlate"][0])
        H, h = int(f.attrs["image_shape"][1]), int(f.attrs["template_shape"][1])
    # The forward transforms as tessera runs them: only the rows that hold data.
    line = subprocess.run([exe, str(py), str(px), "10", str(H), str(h)], check=True, capture_output=True,
                          text=True).stdout
    ms = {k: float(v) for k, v in (kv.split("=") for kv in line.split()) if k not in ("rows", "cols")}
    start = min(run([a.tessera, "--version"]) for _ in range(3))
    n_img, n_tpl, p = len(set(pairs[:, 0].tolist())), len(set(pairs[:, 1].tolist())), len(pairs)
    cpu = (p * ms["c2r_float"] + n_img * ms["r2c_float_image"] + n_tpl * ms["r2c_float_template"]) / 1e3
    floor = cpu / a.cores + read + start
    print(f"FFT floor ({py}x{px}, FFTW_MEASURE plans, one core: inverse {ms['c2r_float']:.2f} ms, forward "
          f"{ms['r2c_float_image']:.2f} ms an image, {ms['r2c_float_template']:.2f} ms a template, skipping their "
          f"zero rows): {p} inverse + {n_img + n_tpl} forward transforms take {cpu:.2f} s; "
          f"over {a.cores} cores, plus this run's read ({read:.2f} s) and start-up ({start:.2f} s), "
          f"the full command cannot take less than {floor:.2f} s: at most {cv_best / floor:.2f}x OpenCV")
    plain = timings.get(f"tessera full, 1 rank x {a.cores} threads, --fft-wisdom")
    if a.masks and plain:
        for side, m in (("one side", 3), ("both sides", 6)):
            t = p * m * ms["c2r_double"] / 1e3 / a.cores
            print(f"masked floor, {side}: {p} x {m} double inverse transforms ({ms['c2r_double']:.2f} ms each) "
                  f"take {t:.2f} s over {a.cores} cores alone: at least {t / plain:.2f}x the unmasked run "
                  f"with --fft-wisdom ({plain:.2f} s)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tessera", required=True)
    ap.add_argument("--images", type=int, default=24)
    ap.add_argument("--size", default="1024x1024")
    ap.add_argument("--template-size", default="256x256")
    ap.add_argument("--pairs", type=int, default=160)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--keep", help="directory for the files (default: a temporary one)")
    ap.add_argument("--other", action="append", default=[], metavar="LABEL=PATH",
                    help="another tessera binary, timed in the same run")
    ap.add_argument("--masks", action="store_true",
                    help="also time masked pairs (issue 15): image masks (a charging stripe and specks), "
                         "template masks (a corner and specks), both; each against the unmasked full run")
    a = ap.parse_args()

    tmp = a.keep or tempfile.mkdtemp(prefix="bench_xcorr_")
    os.makedirs(tmp, exist_ok=True)
    data = os.path.join(tmp, "pairs.h5")
    if not os.path.exists(data):
        subprocess.run([a.tessera, "simulate", "xcorr", "-o", data, "--size", a.size, "--template-size",
                        a.template_size, "--images", str(a.images), "--pairs", str(a.pairs)], check=True)
    if a.masks:
        add_masks(data)
    with h5py.File(data, "r") as f:
        imgs = f["images"][:]
        tpls = f["templates"][:]
        pairs = f["pairs"][:]
    n, H, W = imgs.shape
    k, h, w = tpls.shape
    p = len(pairs)
    print(f"case: {n} images {H}x{W}, {k} templates {h}x{w}, {p} pairs; {a.cores} cores; best of {a.repeats}")

    # OpenCV, valid mode: its own threads in one process...
    cv2.setNumThreads(a.cores)
    cv_threads = float("inf")
    cv_res = None
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        res = []
        for i, j in pairs:
            m = cv2.matchTemplate(imgs[i], tpls[j], cv2.TM_CCOEFF_NORMED)
            _, mx, _, loc = cv2.minMaxLoc(m)
            res.append((loc[1], loc[0], mx, m.shape))
        cv_threads = min(cv_threads, time.perf_counter() - t0)
        cv_res = res
    cv_nthreads = cv2.getNumThreads()
    # ...and a pool of processes, one thread each (the pool starts before the clock).
    chunks = [[(q, int(pairs[q][0]), int(pairs[q][1])) for q in range(c, p, a.cores)] for c in range(a.cores)]
    cv_procs = float("inf")
    with multiprocessing.get_context("fork").Pool(a.cores, _cv_pool_init, (imgs, tpls)) as pool:
        pool.map(_cv_pairs, [[(0, 0, 0)]] * a.cores)  # warm up
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            got = [r for chunk in pool.map(_cv_pairs, chunks) for r in chunk]
            cv_procs = min(cv_procs, time.perf_counter() - t0)
    got.sort()
    check_same = all((g[1], g[2]) == (r[0], r[1]) for g, r in zip(got, cv_res))
    cv_best = min(cv_threads, cv_procs)

    # tessera, whole command.
    out = os.path.join(tmp, "peaks.h5")
    binaries = [("tessera", a.tessera)] + [tuple(o.split("=", 1)) for o in a.other]

    # --fft-wisdom: measured plans, made once before the clock (a few seconds).
    wisdom = os.path.join(tmp, "fft.wisdom")
    masks = ["--image-masks", "/image_masks", "--template-masks", "/template_masks"] if a.masks else []
    subprocess.run([a.tessera, "xcorr", data, "-o", out + ".w.h5", "--force", "--quiet", "--fft-wisdom", wisdom]
                   + masks, check=True)

    def configs(label, exe, out):
        return {
            f"{label} full, 1 rank x {a.cores} threads": [exe, "xcorr", data, "-o", out, "--force", "--quiet",
                                                          "--threads", str(a.cores)],
            f"{label} full, {a.cores} ranks x 1 thread": ["mpirun", "-np", str(a.cores), exe, "xcorr", data,
                                                         "-o", out, "--force", "--quiet", "--threads", "1"],
            f"{label} valid, 1 rank x {a.cores} threads": [exe, "xcorr", data, "-o", out, "--force", "--quiet",
                                                           "--threads", str(a.cores), "--mode", "valid"],
            **({} if label != "tessera" else {
                f"{label} full, 1 rank x {a.cores} threads, --fft-wisdom":
                    [exe, "xcorr", data, "-o", out + ".fw.h5", "--force", "--quiet", "--threads", str(a.cores),
                     "--fft-wisdom", wisdom],
                f"{label} full, {a.cores} ranks x 1 thread, --fft-wisdom":
                    ["mpirun", "-np", str(a.cores), exe, "xcorr", data, "-o", out + ".fw2.h5", "--force", "--quiet",
                     "--threads", "1", "--fft-wisdom", wisdom]}),
            **({} if not a.masks or label != "tessera" else {
                f"{label} full, masked {side}, 1 rank x {a.cores} threads{w}":
                    [exe, "xcorr", data, "-o", out + ".m.h5", "--force", "--quiet", "--threads", str(a.cores)] + args
                    + (["--fft-wisdom", wisdom] if w else [])
                for w in ("", ", --fft-wisdom")
                for side, args in (("images", ["--image-masks", "/image_masks"]),
                                   ("templates", ["--template-masks", "/template_masks"]),
                                   ("both", ["--image-masks", "/image_masks", "--template-masks", "/template_masks"]))}),
        }
    timings = {}
    # The binaries' runs interleaved: each repeat runs every binary once per configuration.
    for _ in range(a.repeats):
        for i, (label, exe) in enumerate(binaries):
            for name, cmd in configs(label, exe, out if i == 0 else out + f".{i}.h5").items():
                timings[name] = min(timings.get(name, float("inf")), run(cmd))

    # Agreement with OpenCV (valid mode, the last configuration's output).
    with h5py.File(out, "r") as f:
        coords = f["coords"][:]
        peaks = f["peaks"][:]
    same, compared, worst = 0, 0, 0.0
    for q, (y, x, v, shape) in enumerate(cv_res):
        if not (0 < y < shape[0] - 1 and 0 < x < shape[1] - 1):
            continue
        compared += 1
        same += int(coords[q][0] - (h - 1) == y and coords[q][1] - (w - 1) == x)
        worst = max(worst, abs(float(peaks[q]) - v))

    print(f"{'':44s} {'seconds':>8s} {'pairs/s':>8s} {'vs OpenCV':>9s}")
    print(f"{'OpenCV matchTemplate (valid), ' + str(cv_nthreads) + ' threads':44s} "
          f"{cv_threads:8.2f} {p / cv_threads:8.1f} {cv_best / cv_threads:9.2f}")
    print(f"{'OpenCV matchTemplate (valid), ' + str(a.cores) + ' processes':44s} "
          f"{cv_procs:8.2f} {p / cv_procs:8.1f} {cv_best / cv_procs:9.2f}")
    for name, t in timings.items():
        print(f"{name:44s} {t:8.2f} {p / t:8.1f} {cv_best / t:9.2f}")
    for name, t in timings.items():
        if "masked" in name:
            w = ", --fft-wisdom" if "wisdom" in name else ""
            plain = timings[f"tessera full, 1 rank x {a.cores} threads{w}"]
            print(f"{name}: {t / plain:.2f}x the unmasked full run's time{w} (target <= 2.5)")
    fft_floor(a, out, pairs, cv_best, timings)
    print(f"agreement (valid mode, {compared} pairs with an interior OpenCV peak): "
          f"{same} same coordinates, largest peak difference {worst:.2e}")
    print(f"OpenCV {cv2.__version__} (the two OpenCV runs found {'the same' if check_same else 'DIFFERENT'} peaks); "
          f"'vs OpenCV' is against the faster OpenCV run; files in {tmp}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
