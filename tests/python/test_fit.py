"""tessera.fit and tessera.fit_spectra: the command's results bit for bit, any
layout and type of the input, the output file, progress and the GIL."""

import os
import threading
import time

import h5py
import numpy as np
import pytest

import tessera
from conftest import read, run_tessera


def command_fit(tmp_path, cube_file, *args, name="cmd.h5"):
    out = tmp_path / name
    run_tessera("fit", cube_file, "-o", out, "--quiet", "--backend", "cpu", *args)
    return out


def assert_same_maps(result, path):
    """Every map of the command's output equals the result's, bit for bit (NaN included)."""
    with h5py.File(path, "r") as f:
        names = [n.decode() if isinstance(n, bytes) else n for n in f.attrs["param_names"]]
        assert names == result.param_names
        for n in names:
            np.testing.assert_array_equal(result.params[n], f["params/" + n][()], err_msg=n)
            np.testing.assert_array_equal(result.sigma[n], f["sigma/" + n][()], err_msg=n)
        for key in ("chi2", "state", "iterations"):
            np.testing.assert_array_equal(getattr(result, key), f[key][()], err_msg=key)
            assert getattr(result, key).dtype == f[key].dtype
        derived = sorted(f["derived"].keys()) if "derived" in f else []
        assert sorted(result.derived) == derived
        for n in derived:
            np.testing.assert_array_equal(result.derived[n], f["derived/" + n][()], err_msg=n)
            np.testing.assert_array_equal(result.derived_sigma[n], f["derived_sigma/" + n][()], err_msg=n)
        counts = [int(c) for c in f.attrs["state_counts"]]
        assert [result.state_counts[s] for s in tessera.STATE_NAMES] == counts


def test_default_fit_equals_the_command(tmp_path, odmr_file):
    cube, sweep = read(odmr_file, "data"), read(odmr_file, "sweep")
    r = tessera.fit(cube, sweep, backend="cpu", progress=False)
    assert r.shape == (24, 30) and r.params["pos0"].shape == (24, 30)
    assert r.state_counts["converged"] > 0.9 * 24 * 30
    assert_same_maps(r, command_fit(tmp_path, odmr_file))
    # The truth is near: positions within a MHz for converged pixels.
    pos0 = read(odmr_file, "truth/pos0")
    ok = r.state == 0
    assert np.median(np.abs(r.params["pos0"][ok] - pos0[ok])) < 1.0


def test_options_equal_the_command(tmp_path, odmr_file):
    cube, sweep = read(odmr_file, "data"), read(odmr_file, "sweep")
    mask = np.zeros(cube.shape[1:], np.uint8)
    mask[3:5, 7:12] = 1
    with h5py.File(odmr_file, "a") as f:
        if "mask" not in f:
            f["mask"] = mask
    r = tessera.fit(cube, sweep, roi=(2, 22, 1, 29), bin=2, fix={"fwhm1": 9.0}, bounds={"amp0": (-1, 0.5)},
                    max_iter=30, tol=1e-5, threads=1, backend="cpu", progress=False)
    out = command_fit(tmp_path, odmr_file, "--roi", "2:22,1:29", "--bin", "2", "--fix", "fwhm1=9",
                      "--bound", "amp0=-1:0.5", "--max-iter", "30", "--tol", "1e-5", name="opts.h5")
    assert r.shape == (10, 14)
    assert_same_maps(r, out)
    assert np.all(r.params["fwhm1"][r.state == 0] == np.float32(9.0))
    m = tessera.fit(cube, sweep, mask=mask.astype(bool), backend="cpu", progress=False)
    assert_same_maps(m, command_fit(tmp_path, odmr_file, "--mask", "/mask", name="mask.h5"))
    assert np.all(m.state[3:5, 7:12] == 4)


def test_layout_and_type_do_not_change_a_bit(tmp_path, odmr_file):
    """A uint16 cube in Fortran order, a transposed view and a float64 copy all
    fit like the same values stored in a file for the command."""
    cube = (read(odmr_file, "data") * 20000).astype(np.uint16)
    sweep = read(odmr_file, "sweep")
    path = tmp_path / "u16.h5"
    with h5py.File(path, "w") as f:
        f["data"] = cube
        f["sweep"] = sweep
    out = command_fit(tmp_path, path, "--threads", "1", name="u16_out.h5")
    fortran = np.asfortranarray(cube)
    r = tessera.fit(fortran, sweep, threads=1, backend="cpu", progress=False)
    assert_same_maps(r, out)
    # [ny, nx, n_sweep] memory seen through a transposed view: no copy needed.
    yxs = np.ascontiguousarray(cube.transpose(1, 2, 0))
    view = yxs.transpose(2, 0, 1)
    assert not view.flags.c_contiguous
    assert_same_maps(tessera.fit(view, sweep.astype(np.float32), backend="cpu", progress=False), out)
    assert_same_maps(tessera.fit(cube.astype(np.float64), list(sweep), backend="cpu", progress=False), out)


def test_sig_ref_and_mle_equal_the_command(tmp_path):
    path = tmp_path / "photons.h5"
    run_tessera("simulate", "odmr", "-o", path, "--size", "12x18", "--peaks", "2", "--sweep-points", "60",
                "--photons", "4000", "--seed", "5")
    sig, ref, sweep = read(path, "sig"), read(path, "ref"), read(path, "sweep")
    r = tessera.fit(sig=sig, ref=ref, sweep=sweep, backend="cpu", progress=False)
    assert_same_maps(r, command_fit(tmp_path, path, "--sig", "/sig", "--ref", "/ref", name="sr.h5"))
    m = tessera.fit(sig, sweep, estimator="mle", backend="cpu", progress=False)
    assert_same_maps(m, command_fit(tmp_path, path, "--data", "/sig", "--estimator", "mle", name="mle.h5"))


def test_own_model_and_derived_maps_equal_the_command(tmp_path):
    path = tmp_path / "t1.h5"
    run_tessera("simulate", "t1", "-o", path, "--size", "10x14", "--seed", "3")
    cube, sweep = read(path, "data"), read(path, "sweep")
    expr = "offset + amp * exp(-(x / t1)^beta)"
    r = tessera.fit(cube, sweep, expr=expr, params=["offset", "amp", "t1", "beta"],
                    start={"offset": 1, "amp": -0.1, "t1": 300, "beta": 1}, bounds={"beta": (0.3, 1.5)},
                    derive={"rate": "1 / t1"}, backend="cpu", progress=False)
    out = command_fit(tmp_path, path, "--expr", expr, "--params", "offset,amp,t1,beta",
                      "--start", "offset=1,amp=-0.1,t1=300,beta=1", "--bound", "beta=0.3:1.5",
                      "--derive", "rate=1 / t1", name="t1_out.h5")
    assert_same_maps(r, out)
    ok = r.state == 0
    np.testing.assert_allclose(r.derived["rate"][ok], 1 / r.params["t1"][ok], rtol=1e-6)


def test_fit_spectra_is_the_cube_fit_of_one_row(odmr_file):
    cube, sweep = read(odmr_file, "data"), read(odmr_file, "sweep")
    row = cube[:, 5, :]                       # [n_sweep, nx]
    spectra = np.ascontiguousarray(row.T)     # [n_fits, n_sweep]
    s = tessera.fit_spectra(spectra, sweep, backend="cpu", progress=False)
    c = tessera.fit(cube[:, 5:6, :], sweep, backend="cpu", progress=False)
    assert s.shape == (30,) and s.chi2.shape == (30,)
    for n in s.param_names:
        np.testing.assert_array_equal(s.params[n], c.params[n][0])
    np.testing.assert_array_equal(s.state, c.state[0])


def test_guess_maps_hold_and_weights(odmr_file):
    cube, sweep = read(odmr_file, "data"), read(odmr_file, "sweep")
    first = tessera.fit(cube, sweep, backend="cpu", progress=False)
    again = tessera.fit(cube, sweep, guess=first, backend="cpu", progress=False)
    ok = (first.state == 0) & (again.state == 0)
    np.testing.assert_allclose(again.params["pos0"][ok], first.params["pos0"][ok], atol=0.05)
    # Held parameters keep each pixel's own start value, bit for bit.
    guess = {n: first.params[n].copy() for n in first.param_names}
    guess["fwhm0"] = np.where(ok, guess["fwhm0"] * 1.1, 9.0).astype(np.float32)
    held = tessera.fit(cube, sweep, guess=guess, hold=["fwhm0"], backend="cpu", progress=False)
    good = held.state == 0
    assert good.sum() > 0.8 * good.size
    np.testing.assert_array_equal(held.params["fwhm0"][good], guess["fwhm0"][good])
    # Unit weights change nothing; zero weights on half the points change the fit.
    spectra = np.ascontiguousarray(cube[:, 3, :].T)
    g1 = {n: first.params[n][3] for n in first.param_names}
    plain = tessera.fit_spectra(spectra, sweep, guess=g1, backend="cpu", progress=False)
    ones = tessera.fit_spectra(spectra, sweep, guess=g1, weights=np.ones_like(spectra), backend="cpu",
                               progress=False)
    for n in plain.param_names:
        np.testing.assert_array_equal(plain.params[n], ones.params[n])
    w = np.ones_like(spectra)
    w[:, ::2] = 0
    half = tessera.fit_spectra(spectra, sweep, guess=g1, weights=w, backend="cpu", progress=False)
    alone = tessera.fit_spectra(spectra[:, 1::2], sweep[1::2], guess=g1, backend="cpu", progress=False)
    np.testing.assert_array_equal(half.state, alone.state)
    both = (half.state == 0) & (alone.state == 0)
    assert both.sum() >= 8
    np.testing.assert_allclose(half.params["pos0"][both], alone.params["pos0"][both], atol=1e-3)


def test_to_hdf5_writes_the_commands_file(tmp_path, odmr_file):
    cube, sweep = read(odmr_file, "data"), read(odmr_file, "sweep")
    r = tessera.fit(cube, sweep, backend="cpu", progress=False)
    mine = tmp_path / "mine.h5"
    r.to_hdf5(mine)
    assert_same_maps(r, mine)
    cmd = command_fit(tmp_path, odmr_file, name="ref.h5")
    with h5py.File(mine, "r") as a, h5py.File(cmd, "r") as b:
        datasets = lambda f: sorted(k for k in _walk(f))
        assert datasets(a) == datasets(b)
        for k in _walk(b):
            assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
        np.testing.assert_array_equal(a["sweep"][()], b["sweep"][()])
        for key in ("model", "peaks", "background", "x_mid", "estimator", "tol", "max_iter", "complete"):
            assert a.attrs[key] == b.attrs[key], key
        assert a["derived"].attrs["bnv_definition"] == b["derived"].attrs["bnv_definition"]
    with pytest.raises(FileExistsError):
        r.to_hdf5(mine)
    r.to_hdf5(mine, force=True)
    assert not os.path.exists(str(mine) + ".partial")


def _walk(f):
    out = []
    f.visititems(lambda name, obj: out.append(name) if isinstance(obj, h5py.Dataset) else None)
    return out


def test_progress_counts_every_pixel_and_the_gil_is_released(odmr_file):
    cube, sweep = read(odmr_file, "data"), read(odmr_file, "sweep")
    big = np.tile(cube, (1, 8, 8))  # 192 x 240 pixels: long enough to watch
    seen = []
    ticks = [0]
    stop = threading.Event()

    def count():
        while not stop.is_set():
            ticks[0] += 1
            time.sleep(0.001)

    t = threading.Thread(target=count)
    t.start()
    t0 = time.monotonic()
    r = tessera.fit(big, sweep, threads=1, backend="cpu", progress=seen.append)
    elapsed = time.monotonic() - t0
    stop.set()
    t.join()
    assert sum(seen) == big.shape[1] * big.shape[2]
    assert r.shape == (192, 240)
    # A thread holding the GIL for the whole fit would let the counter tick a
    # handful of times; released, it ticks about once a millisecond.
    assert ticks[0] > 0.2 * elapsed * 1000, (ticks[0], elapsed)


def test_info_and_help():
    i = tessera.info()
    assert i["version"] == tessera.__version__
    assert "cpu" in i["backends"] and i["cpu_threads"] >= 1
    assert i["simd_compiled"] in ("AVX-512", "AVX2", "AVX", "SSE2", "NEON", "none (scalar)")
    assert isinstance(i["cuda_devices"], list)
    for option in ("estimator", "roi", "bin", "backend", "guess", "hold", "weights"):
        assert option in tessera.fit.__doc__, option
    assert tessera.STATE_NAMES[:3] == ("converged", "iteration_limit", "singular")
