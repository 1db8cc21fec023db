"""Bad input raises ValueError or TypeError with the command's message and
never crashes the interpreter; Ctrl-C stops a fit with KeyboardInterrupt."""

import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import tessera

rng = np.random.default_rng(1)
CUBE = (1 - 0.01 * rng.random((40, 6, 7))).astype(np.float32)
SWEEP = np.linspace(2800, 2940, 40)


def fit(*args, **kw):
    kw.setdefault("progress", False)
    kw.setdefault("backend", "cpu")
    return tessera.fit(*args, **kw)


@pytest.mark.parametrize("call,error,message", [
    (lambda: fit(CUBE[0], SWEEP), ValueError, r"cube: expected 3 dimensions \[n_sweep, ny, nx\], got shape \(6, 7\)"),
    (lambda: fit(CUBE.astype(np.complex64), SWEEP), TypeError, "cube: expected a numeric array, got dtype complex64"),
    (lambda: fit(np.array([["a"]], dtype=object), SWEEP), TypeError, "expected a numeric array"),
    (lambda: fit(CUBE, SWEEP[:-1]), ValueError, "the sweep has 39 values but the cube has 40 sweep points"),
    (lambda: fit(CUBE, np.where(np.arange(40) == 3, np.nan, SWEEP)), ValueError,
     "the sweep holds a non-finite value"),
    (lambda: fit(CUBE, SWEEP, model="voigt"), ValueError, "voigt"),
    (lambda: fit(CUBE, SWEEP, peaks=9), ValueError, "peaks"),
    (lambda: fit(CUBE, SWEEP, estimator="l2"), ValueError, "--estimator"),
    (lambda: fit(CUBE, SWEEP, tol=2.0), ValueError, r"--tol must be in \(0, 1\)"),
    (lambda: fit(CUBE, SWEEP, bin=0), ValueError, "--bin must be at least 1"),
    (lambda: fit(CUBE, SWEEP, roi="1:2"), ValueError, "roi"),
    (lambda: fit(CUBE, SWEEP, roi=(0, 9, 0, 7)), ValueError, "roi|region"),
    (lambda: fit(CUBE, SWEEP, fix={"nope": 1}), ValueError, "unknown parameter 'nope'"),
    (lambda: fit(CUBE, SWEEP, bounds={"pos0": 3}), ValueError, r"bounds pos0: expected \(lo, hi\)"),
    (lambda: fit(CUBE, SWEEP, mask=np.zeros((7, 6))), ValueError, "the mask must be 6 x 7"),
    (lambda: fit(CUBE, SWEEP, ref=CUBE[:, :3]), ValueError, "ref"),
    (lambda: fit(CUBE, SWEEP, expr="a * exp(-x / ", params=["a"], start={"a": 1}), ValueError,
     "expression: .* at position"),
    (lambda: fit(CUBE, SWEEP, expr="a * exp(-x / t)", params=["a", "t"], start={"a": 1}), ValueError, "start"),
    (lambda: fit(CUBE, SWEEP, guess={"offset": np.ones((6, 7))}), ValueError, "guess: no start map for pos0"),
    (lambda: fit(CUBE, SWEEP, hold=["pos0"]), ValueError, "hold: parameters held at their starts need start maps"),
    (lambda: fit(CUBE, SWEEP, weights=CUBE, bin=2), ValueError, "weights: only with --bin 1"),
    (lambda: fit(CUBE, SWEEP, weights=CUBE, estimator="mle"), ValueError, "weights: only for least squares"),
    (lambda: fit(CUBE, SWEEP, weights=CUBE[:, :, :6]), ValueError, "weights differs in shape from the data"),
    (lambda: fit(CUBE, SWEEP, weights=CUBE[0]), ValueError, "weights: expected 3 dimensions"),
    (lambda: fit(CUBE, SWEEP, hold=["pos0"], fix={"pos0": 2870}), ValueError, "hold pos0: the parameter is also fixed"),
    (lambda: fit(CUBE, SWEEP, hold=["pos9"], guess={n: np.ones((6, 7)) for n in
                                                   ["offset", "pos0", "fwhm0", "amp0", "pos1", "fwhm1", "amp1"]}),
     ValueError, "hold: unknown parameter 'pos9'"),
    (lambda: fit(CUBE, SWEEP, colour="red"), TypeError, "colour"),
    (lambda: fit(CUBE, SWEEP, threads="2"), TypeError, "threads: expected an integer"),
    (lambda: fit(CUBE, SWEEP, backend="opencl"), ValueError, "--backend"),
    (lambda: fit(np.zeros((40, 6, 7), np.float32), SWEEP), ValueError, "no pixel with finite, non-zero data"),
    (lambda: tessera.fit_spectra(CUBE[:, 0, :], SWEEP, progress=False), ValueError, "sweep has 40 values but the cube has 7"),
])
def test_fit_bad_input(call, error, message):
    with pytest.raises(error, match=message):
        call()


IM = rng.random((3, 20, 16)).astype(np.float32)
TP = rng.random((2, 5, 4)).astype(np.float32)
PAIRS = np.array([[0, 0], [2, 1]])


def xc(*args, **kw):
    kw.setdefault("progress", False)
    return tessera.xcorr(*args, **kw)


@pytest.mark.parametrize("call,error,message", [
    (lambda: xc(IM, TP, [[0, 0], [3, 1]]), ValueError, "pair 1 names image 3, outside"),
    (lambda: xc(IM, TP, [[0, 2]]), ValueError, "template 2"),
    (lambda: xc(IM, TP, np.array([[0.0, 1.0]])), TypeError, "pairs: expected integers"),
    (lambda: xc(IM, TP, [[0, 0, 1]]), ValueError, r"pairs: expected \[p, 2\]"),
    (lambda: xc(np.where(np.arange(16) == 4, np.nan, IM), TP, PAIRS), ValueError,
     r"image 0 has a non-finite value \(nan\) at \(0, 4\)"),
    (lambda: xc(IM[:, :4, :3], TP, PAIRS), ValueError, "larger than the images"),
    (lambda: xc(IM[0, 0], TP, PAIRS), ValueError, "images: expected 3 dimensions"),
    (lambda: xc([IM[0], IM[1, :10]], TP, PAIRS), ValueError, "images: frames of different shapes"),
    (lambda: xc(IM, TP, PAIRS, mode="same"), ValueError, "mode"),
    (lambda: xc(IM, TP, PAIRS, crop=(1, 2, 3)), ValueError, "crop: expected A or"),
    (lambda: xc(IM, TP, PAIRS, eps=-1.0), ValueError, "--eps must be finite and >= 0"),
    (lambda: xc(IM, TP, PAIRS, min_overlap=-0.1), ValueError, "--min-overlap must be between 0 and 1"),
    (lambda: xc(IM, TP, PAIRS, min_overlap="half"), TypeError, "min_overlap"),
    (lambda: xc(IM, TP, PAIRS, top=0), ValueError, "--top must be >= 1"),
    (lambda: xc(IM, TP, PAIRS, top=-2), ValueError, "--top must be >= 1"),
    (lambda: xc(IM, TP, PAIRS, top=3, min_distance=-1), ValueError, "--min-distance must be >= 0"),
    (lambda: xc(IM, TP, PAIRS, min_distance=2), ValueError, "--min-distance needs --top"),
    (lambda: xc(IM, TP, PAIRS, top=2.5), TypeError, "top: expected an integer"),
    (lambda: xc(IM.astype(np.complex128), TP, PAIRS), TypeError, "images: expected a numeric array"),
    (lambda: xc(IM, TP, PAIRS, image_masks=np.ones((2,) + IM.shape[1:])), ValueError,
     r"image_masks: shape \[2, 20, 16\] differs from the images' \[3, 20, 16\]"),
    (lambda: xc(IM, TP, PAIRS, template_masks=np.ones(IM.shape)), ValueError,
     "template_masks: shape .* differs from the templates'"),
    (lambda: xc(IM, TP, PAIRS, image_masks=np.where(np.arange(IM.size).reshape(IM.shape) == 17, np.nan, 1.0)),
     ValueError, r"image_masks: mask 0 has a non-finite value \(nan\) at \(1, 1\)"),
    (lambda: xc(IM, TP, PAIRS, image_masks=np.ones(IM.shape, np.complex64)), TypeError, "image_masks"),
    (lambda: xc(IM, TP, PAIRS, image_masks=np.ones(IM.shape), backend="cuda"), ValueError, "--backend cuda"),
])
def test_xcorr_bad_input(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_ctrl_c_cancels_a_long_fit():
    """SIGINT during a fit of several seconds: KeyboardInterrupt soon after,
    and the interpreter carries on (the next fit works)."""
    script = textwrap.dedent("""
        import os, signal, sys, threading, time
        import numpy as np, tessera
        rng = np.random.default_rng(2)
        x = np.linspace(2800, 2940, 200)
        ny, nx = 400, 400
        cube = (1 - 0.01 / (1 + ((x[:, None, None] - 2870) / 5) ** 2)
                + 0.002 * rng.standard_normal((200, ny, nx))).astype(np.float32)
        threading.Timer(1.0, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
        t0 = time.monotonic()
        try:
            tessera.fit(cube, x, peaks=8, threads=1, backend="cpu", progress=False)
            print("finished", time.monotonic() - t0)
        except KeyboardInterrupt:
            print("interrupted", time.monotonic() - t0)
        r = tessera.fit(cube[:, :4, :4], x, peaks=1, backend="cpu", progress=False)
        print("after", r.state_counts["converged"])
    """)
    env = dict(os.environ)
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.split("\n")
    assert lines[0].startswith("interrupted"), p.stdout
    assert float(lines[0].split()[1]) < 5.0, p.stdout  # the whole fit would take far longer
    assert lines[1].startswith("after") and int(lines[1].split()[1]) > 0
    assert time.monotonic() - t0 < 120


def test_a_failing_progress_callback_stops_the_fit():
    calls = []

    def boom(n):
        calls.append(n)
        raise RuntimeError("stop here")

    big = np.tile(CUBE, (1, 40, 40))
    with pytest.raises(RuntimeError, match="stop here"):
        tessera.fit(big, SWEEP, peaks=1, threads=1, backend="cpu", progress=boom)
    assert len(calls) == 1
