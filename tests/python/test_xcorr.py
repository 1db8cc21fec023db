"""tessera.xcorr: the command's results bit for bit, inputs of any type and
layout, a float64 brute force on a small case."""

import h5py
import numpy as np
import pytest

import tessera
from conftest import read, run_tessera


def command_xcorr(tmp_path, path, *args, name="x.h5"):
    out = tmp_path / name
    run_tessera("xcorr", path, "-o", out, "--quiet", "--backend", "cpu", "--subpixel", *args)
    with h5py.File(out, "r") as f:
        return {k: f[k][()] for k in ("coords", "peaks", "quality", "subpixel")}


def assert_same(q, ref):
    for k in ("coords", "peaks", "quality", "subpixel"):
        got = getattr(q, k)
        assert got.dtype == ref[k].dtype, k
        np.testing.assert_array_equal(got, ref[k], err_msg=k)


@pytest.mark.parametrize("args,kw", [
    ((), {}),
    (("--crop", "7,3"), {"crop": (7, 3)}),
    (("--mode", "valid", "--exclusion", "2"), {"mode": "valid", "exclusion": 2}),
    (("--normalize-input", "--eps", "1e-3"), {"normalize_input": True, "eps": 1e-3}),
    (("--min-overlap", "0.4", "--crop", "3"), {"min_overlap": 0.4, "crop": 3}),
])
def test_equals_the_command(tmp_path, tiles_file, args, kw):
    images, templates, pairs = (read(tiles_file, k) for k in ("images", "templates", "pairs"))
    q = tessera.xcorr(images, templates, pairs, backend="cpu", progress=False, **kw)
    assert len(q) == len(pairs)
    assert_same(q, command_xcorr(tmp_path, tiles_file, *args))


@pytest.mark.parametrize("args,kw", [
    (("--top", "4"), {"top": 4}),
    (("--top", "3", "--min-distance", "1", "--crop", "5,2"), {"top": 3, "min_distance": 1, "crop": (5, 2)}),
    (("--top", "5", "--min-distance", "0", "--mode", "valid"), {"top": 5, "min_distance": 0, "mode": "valid"}),
])
def test_top_equals_the_command(tmp_path, tiles_file, args, kw):
    """top=K, min_distance=D: /top_coords and /top_peaks of the command bit for
    bit (int64 [p, K, 2], float32 [p, K]), and the other results unchanged."""
    images, templates, pairs = (read(tiles_file, k) for k in ("images", "templates", "pairs"))
    q = tessera.xcorr(images, templates, pairs, backend="cpu", progress=False, **kw)
    out = tmp_path / "top.h5"
    run_tessera("xcorr", tiles_file, "-o", out, "--quiet", "--backend", "cpu", "--subpixel", *args)
    with h5py.File(out, "r") as f:
        ref = {k: f[k][()] for k in ("coords", "peaks", "quality", "subpixel", "top_coords", "top_peaks")}
    assert_same(q, ref)
    k = kw["top"]
    assert q.top_coords.shape == (len(pairs), k, 2) and q.top_coords.dtype == np.int64
    assert q.top_peaks.shape == (len(pairs), k) and q.top_peaks.dtype == np.float32
    np.testing.assert_array_equal(q.top_coords, ref["top_coords"])
    np.testing.assert_array_equal(q.top_peaks, ref["top_peaks"])
    np.testing.assert_array_equal(q.top_coords[:, 0], q.coords)
    plain = tessera.xcorr(images, templates, pairs, backend="cpu", progress=False)
    assert plain.top_coords is None and plain.top_peaks is None


def test_masks_equal_the_command(tmp_path, tiles_file):
    """Masks given as arrays (bool, a list of float frames) give the command's
    bits with the same masks as datasets; all-valid masks give no masks' bits."""
    images, templates, pairs = (read(tiles_file, k) for k in ("images", "templates", "pairs"))
    rng = np.random.default_rng(3)
    mi = rng.random(images.shape) > 0.2
    mt = (rng.random(templates.shape) > 0.1).astype(np.float32) * 0.5
    masked = tmp_path / "masked.h5"
    with h5py.File(tiles_file, "r") as f, h5py.File(masked, "w") as g:
        for k in ("images", "templates", "pairs"):
            g[k] = f[k][()]
        g["mi"] = mi.astype(np.uint8)
        g["mt"] = mt
    q = tessera.xcorr(images, templates, pairs, backend="auto", progress=False, min_overlap=0.3,
                      image_masks=mi, template_masks=[m for m in mt])
    assert_same(q, command_xcorr(tmp_path, masked, "--min-overlap", "0.3", "--image-masks", "/mi",
                                 "--template-masks", "/mt", name="m.h5"))
    plain = tessera.xcorr(images, templates, pairs, backend="cpu", progress=False)
    ones = tessera.xcorr(images, templates, pairs, backend="cpu", progress=False,
                         image_masks=np.ones(images.shape, np.int8))
    for k in ("coords", "peaks", "quality", "subpixel"):
        np.testing.assert_array_equal(getattr(ones, k), getattr(plain, k))
    assert not np.array_equal(q.peaks, plain.peaks)


def test_fft_wisdom_equals_the_command(tmp_path, tiles_file):
    """fft_wisdom=FILE: the package writes FILE, the command reads it, and both give
    the same bits (masked too: the file gains the double plans)."""
    images, templates, pairs = (read(tiles_file, k) for k in ("images", "templates", "pairs"))
    wisdom = tmp_path / "fft.wisdom"
    q = tessera.xcorr(images, templates, pairs, backend="cpu", progress=False, fft_wisdom=wisdom)
    assert wisdom.exists()
    assert_same(q, command_xcorr(tmp_path, tiles_file, "--fft-wisdom", wisdom))
    plain = tessera.xcorr(images, templates, pairs, backend="cpu", progress=False)
    np.testing.assert_array_equal(q.coords, plain.coords)
    assert np.abs(q.peaks - plain.peaks).max() <= 1e-5
    mi = np.random.default_rng(5).random(images.shape) > 0.1
    masked = tmp_path / "masked.h5"
    with h5py.File(tiles_file, "r") as f, h5py.File(masked, "w") as g:
        for k in ("images", "templates", "pairs"):
            g[k] = f[k][()]
        g["mi"] = mi.astype(np.uint8)
    m = tessera.xcorr(images, templates, pairs, progress=False, min_overlap=0.3, image_masks=mi, fft_wisdom=wisdom)
    assert_same(m, command_xcorr(tmp_path, masked, "--min-overlap", "0.3", "--image-masks", "/mi",
                                 "--fft-wisdom", wisdom, name="mw.h5"))
    with pytest.raises(ValueError, match="not a tessera FFT wisdom file"):
        bad = tmp_path / "bad.wisdom"
        bad.write_text("nothing")
        tessera.xcorr(images, templates, pairs, progress=False, fft_wisdom=bad)


def test_types_layouts_and_lists_change_nothing(tmp_path, tiles_file):
    images, templates, pairs = (read(tiles_file, k) for k in ("images", "templates", "pairs"))
    ref = tessera.xcorr(images, templates, pairs, backend="cpu", progress=False)
    fortran = np.asfortranarray(images)
    as_list = [t for t in templates]
    q = tessera.xcorr(fortran, as_list, pairs.astype(np.int32), threads=1, backend="cpu", progress=False)
    for k in ("coords", "peaks", "quality", "subpixel"):
        np.testing.assert_array_equal(getattr(q, k), getattr(ref, k))
    # The caller's arrays are never modified, normalize_input included.
    before = images.copy()
    tessera.xcorr(images, templates, pairs, normalize_input=True, backend="cpu", progress=False)
    np.testing.assert_array_equal(images, before)
    assert tessera.xcorr(images, templates, pairs, subpixel=False, progress=False).subpixel is None


def brute_force(image, template):
    """Full-mode ZNCC in float64: the image zero-padded, the template's
    statistics over its whole window, R = 0 where the image window is flat."""
    H, W = image.shape
    h, w = template.shape
    padded = np.zeros((H + 2 * (h - 1), W + 2 * (w - 1)))
    padded[h - 1:h - 1 + H, w - 1:w - 1 + W] = image
    t = template - template.mean()
    tn = np.sqrt((t * t).sum())
    R = np.zeros((H + h - 1, W + w - 1))
    n = h * w
    for y in range(H + h - 1):
        for x in range(W + w - 1):
            win = padded[y:y + h, x:x + w]
            s, s2 = win.sum(), (win * win).sum()
            var = s2 - s * s / n
            den = np.sqrt(max(var, 0.0)) * tn
            R[y, x] = (win * t).sum() / den if den > 1e-6 else 0.0
    return R


def test_brute_force_agrees(tmp_path):
    rng = np.random.default_rng(7)
    images = rng.normal(size=(2, 23, 19))
    templates = np.stack([images[0, 5:12, 3:8] + 0.05 * rng.normal(size=(7, 5)), rng.normal(size=(7, 5))])
    pairs = np.array([[0, 0], [1, 0], [0, 1], [1, 1]])
    q = tessera.xcorr(images, templates, pairs, backend="cpu", progress=False)
    for p, (i, t) in enumerate(pairs):
        R = brute_force(images[i].astype(np.float32).astype(np.float64),
                        templates[t].astype(np.float32).astype(np.float64))
        y, x = np.unravel_index(np.argmax(R), R.shape)
        assert tuple(q.coords[p]) == (y, x)
        assert abs(q.peaks[p] - R[y, x]) < 1e-5
    # The planted template is found where it was cut: placement (5 + 7 - 1, 3 + 5 - 1).
    assert tuple(q.coords[0]) == (11, 7)


def test_min_overlap_one_is_the_valid_mode(tiles_file):
    """min_overlap=1 leaves only full-overlap placements: valid mode's peaks
    (values to rounding: valid mode transforms a smaller map)."""
    images, templates, pairs = (read(tiles_file, k) for k in ("images", "templates", "pairs"))
    a = tessera.xcorr(images, templates, pairs, min_overlap=1.0, backend="cpu", progress=False)
    b = tessera.xcorr(images, templates, pairs, mode="valid", backend="cpu", progress=False)
    np.testing.assert_array_equal(a.coords, b.coords)
    np.testing.assert_allclose(a.peaks, b.peaks, atol=1e-6)
