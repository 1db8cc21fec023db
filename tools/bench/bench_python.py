#!/usr/bin/env python3
"""tessera's Python package against scipy.optimize.least_squares on the same pixels,
and the pyGpufit drop-in (tessera.compat) against the native call.

    PYTHONPATH=build/python /usr/bin/python3 tools/bench/bench_python.py [--size N] [--scipy-pixels M] [--repeat R]

One process pinned to one core, one thread for every contender (threads=1 for
tessera; the drop-in uses the cores the process may use; scipy is
single-threaded), side by side in one run. The spectra: two Lorentzian dips
(an NV axis), 100 points from 2800 to 2940 MHz, contrast 1 %, FWHM 9 MHz,
noise 0.2 %, positions moving across the image.

Rows:
- tessera.fit_spectra from given starts: the engine from the Python call,
  started where scipy starts (the truth moved by a fraction of a linewidth);
- tessera.fit on the cube: the whole call, automatic starts included;
- scipy least_squares (method "lm", MINPACK, analytic Jacobian) from the same
  starts, on the first M pixels;
- the pyGpufit drop-in (LORENTZ8_CONST with 2 active peaks) from the same
  starts, when tessera.compat.pygpufit is present.
Accuracy: the rms error of pos0 against the truth on pixels every contender
fitted, and how many converged.
"""

import argparse
import os
import platform
import time

import numpy as np

import tessera


def lorentz2(x, p):
    off, p0, w0, a0, p1, w1, a1 = p
    return (off - a0 / (1 + ((x - p0) / (w0 / 2)) ** 2) - a1 / (1 + ((x - p1) / (w1 / 2)) ** 2))


def jac2(x, p):
    off, p0, w0, a0, p1, w1, a1 = p
    J = np.empty((x.size, 7))
    J[:, 0] = 1
    for k, (pos, w, a) in enumerate(((p0, w0, a0), (p1, w1, a1))):
        u = (x - pos) / (w / 2)
        d = 1 / (1 + u * u)
        J[:, 1 + 3 * k] = -a * d * d * 2 * u / (w / 2)          # d/dpos
        J[:, 2 + 3 * k] = -a * d * d * 2 * u * u / w            # d/dfwhm
        J[:, 3 + 3 * k] = -d                                    # d/damp
    return J


def simulate(ny, nx, n=100, seed=1):
    rng = np.random.default_rng(seed)
    x = np.linspace(2800, 2940, n)
    yy, xx = np.mgrid[0:ny, 0:nx]
    shift = 10 * (xx / max(1, nx - 1) - 0.5) + 5 * (yy / max(1, ny - 1) - 0.5)
    truth = np.stack([np.ones((ny, nx)), 2840 + shift, np.full((ny, nx), 9.0), np.full((ny, nx), 0.01),
                      2900 - shift, np.full((ny, nx), 9.0), np.full((ny, nx), 0.01)])
    cube = np.empty((n, ny, nx), np.float32)
    for j in range(ny):
        for i in range(nx):
            cube[:, j, i] = lorentz2(x, truth[:, j, i])
    cube += (0.002 * rng.standard_normal(cube.shape)).astype(np.float32)
    return x, cube, truth


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=128, help="image side (pixels = size^2)")
    ap.add_argument("--scipy-pixels", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3, help="best of this many runs (tessera)")
    args = ap.parse_args()
    # One core for everything: the drop-in has no thread option (threads=0, the
    # cores this process may use), and numpy's BLAS stays on one core too.
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    from scipy.optimize import least_squares

    info = tessera.info()
    print(f"tessera {tessera.__version__}, SIMD {info['simd_compiled']} (this CPU: {info['simd_cpu']}), "
          f"{platform.processor() or platform.machine()}, numpy {np.__version__}")
    x, cube, truth = simulate(args.size, args.size)
    ny, nx = cube.shape[1:]
    npx = ny * nx
    spectra = np.ascontiguousarray(cube.reshape(cube.shape[0], -1).T)
    t = truth.reshape(7, -1).T
    rng = np.random.default_rng(5)
    starts = t.copy()
    starts[:, 1] += rng.uniform(-2, 2, npx)
    starts[:, 4] += rng.uniform(-2, 2, npx)
    starts[:, 2] *= 1.2
    starts[:, 5] *= 1.2
    starts = starts.astype(np.float32)
    names = ["offset", "pos0", "fwhm0", "amp0", "pos1", "fwhm1", "amp1"]
    guess = {n: starts[:, k] for k, n in enumerate(names)}
    rows = []

    def best(f):
        times, out = [], None
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            out = f()
            times.append(time.perf_counter() - t0)
        return min(times), out

    te, r_eng = best(lambda: tessera.fit_spectra(spectra, x, guess=guess, threads=1, backend="cpu",
                                                 progress=False))
    rows.append(("tessera.fit_spectra, given starts", npx, te, r_eng.params["pos0"], r_eng.state == 0,
                 r_eng.iterations.mean()))
    tc, r_cube = best(lambda: tessera.fit(cube, x, threads=1, backend="cpu", progress=False))
    rows.append(("tessera.fit, cube, automatic starts", npx, tc, r_cube.params["pos0"].ravel(),
                 r_cube.state.ravel() == 0, r_cube.iterations.mean()))

    m = min(args.scipy_pixels, npx)
    pos = np.full(m, np.nan)
    ok = np.zeros(m, bool)
    iters = np.zeros(m)
    t0 = time.perf_counter()
    for i in range(m):
        y = spectra[i].astype(np.float64)
        s = least_squares(lambda p: lorentz2(x, p) - y, starts[i].astype(np.float64),
                          jac=lambda p: jac2(x, p), method="lm", xtol=1e-6, ftol=1e-6)
        pos[i] = s.x[1]
        ok[i] = s.status > 0
        iters[i] = s.njev  # one Jacobian per MINPACK iteration
    ts = time.perf_counter() - t0
    rows.append((f"scipy least_squares lm, first {m} pixels", m, ts, pos, ok, iters.mean()))

    try:
        from tessera.compat.pygpufit import gpufit as gf
        p8 = np.zeros((npx, 25), np.float32)  # c, then fwhm, position, amplitude per peak
        p8[:, 0] = starts[:, 0]
        for k in range(2):
            p8[:, 1 + 3 * k] = starts[:, 2 + 3 * k]
            p8[:, 2 + 3 * k] = starts[:, 1 + 3 * k]
            p8[:, 3 + 3 * k] = -starts[:, 3 + 3 * k]
        to_fit = np.zeros(25, np.int32)
        to_fit[:7] = 1
        user_info = x.astype(np.float32)
        tg, out = best(lambda: gf.fit(spectra, None, gf.ModelID.LORENTZ8_CONST, p8, 1e-6, 100, to_fit, None,
                                      user_info, platform="cpu"))
        rows.append(("compat pygpufit LORENTZ8_CONST, 2 of 8 peaks", npx, tg, out[0][:, 2], out[1] == 0,
                     out[3].mean()))
    except ImportError as e:
        print(f"(no pyGpufit drop-in: {e})")

    common = np.ones(m, bool)
    for _, n, _, p, ok, _ in rows:
        common &= ok[:m] & np.isfinite(p[:m])
    tpos = t[:m, 1]
    print(f"\n{npx} pixels ({ny} x {nx}), 100 points, 2 dips; scipy on {m}; rms over {common.sum()} pixels "
          f"every contender converged on\n")
    print(f"| contender | pixels | seconds | pixels/s | vs scipy | pos0 rms error (MHz) | converged | "
          f"mean iterations |")
    print(f"|---|---|---|---|---|---|---|---|")
    scipy_rate = m / ts
    for label, n, sec, p, ok, it in rows:
        rate = n / sec
        rms = np.sqrt(np.mean((p[:m][common] - tpos[common]) ** 2))
        print(f"| {label} | {n} | {sec:.3f} | {rate:,.0f} | {rate / scipy_rate:.0f}x | {rms:.4f} | "
              f"{ok.mean() * 100:.1f} % | {it:.2f} |")


if __name__ == "__main__":
    main()
