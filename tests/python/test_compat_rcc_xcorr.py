"""tessera.compat.rcc_xcorr: rcc-xcorr's BatchXCorr on tessera.xcorr.

Checked against tessera.xcorr itself (bit for bit), against a direct float64
ZNCC in rcc-xcorr's coordinate convention, and for each documented difference
from rcc-xcorr (per-axis crop, untouched inputs, NaN and id errors, eps).
"""

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

import tessera
from tessera.compat.rcc_xcorr.xcorr import BatchXCorr as bx_module
from tessera.compat.rcc_xcorr.xcorr.BatchXCorr import BatchXCorr, CorrelationIdError

F32_EPS = float(np.finfo(np.float32).eps)
F64_EPS = float(np.finfo(np.float64).eps)


def run(images, templates, correlations, **kw):
    kw.setdefault("use_gpu", False)
    kw.setdefault("disable_pbar", True)
    return BatchXCorr(images, templates, correlations, **kw).execute_batch()


def zncc_full(image, template, eps):
    """The full (H+h-1) x (W+w-1) ZNCC map, directly in float64: window (y, x)
    covers the zero-padded image's rows y..y+h-1, columns x..x+w-1; R = 0 where
    sqrt(window SSD * template SSD) <= eps (rcc-xcorr's rule)."""
    image = np.asarray(image, np.float64)
    template = np.asarray(template, np.float64)
    (H, W), (h, w) = image.shape, template.shape
    padded = np.zeros((H + 2 * (h - 1), W + 2 * (w - 1)))
    padded[h - 1:h - 1 + H, w - 1:w - 1 + W] = image
    win = sliding_window_view(padded, (h, w))
    t = template - template.mean()
    num = np.einsum("yxij,ij->yx", win, t)
    centred = win - win.mean(axis=(2, 3), keepdims=True)
    den = np.sqrt((centred ** 2).sum(axis=(2, 3)) * (t ** 2).sum())
    return np.where(den > eps, num / np.where(den > eps, den, 1.0), 0.0)


def reference_peak(image, template, eps, crop=(0, 0)):
    """(y, x) in the full map and R of the first maximum in the region that
    skips crop[0] rows at top and bottom and crop[1] columns at left and right."""
    r = zncc_full(image, template, eps)
    a, b = crop
    region = r[a:r.shape[0] - a, b:r.shape[1] - b]
    y, x = np.unravel_index(np.argmax(region), region.shape)
    return (int(y) + a, int(x) + b), float(region[y, x])


def random_tiles(rng, n_images, shape, n_templates, tshape, dtype=np.float32):
    """Images of smooth-ish noise and templates cut from them (plus noise) or random."""
    images = [rng.random(shape).astype(dtype) for _ in range(n_images)]
    h, w = tshape
    templates = []
    for k in range(n_templates):
        if k % 2 == 0:
            src = images[k % n_images]
            y, x = rng.integers(0, shape[0] - h + 1), rng.integers(0, shape[1] - w + 1)
            t = src[y:y + h, x:x + w] + 0.2 * rng.random(tshape)
        else:
            t = rng.random(tshape)
        templates.append(t.astype(dtype))
    return images, templates


def assert_same_as_tessera(coords, peaks, ref):
    assert coords.dtype == np.int64 and coords.shape == (len(ref.coords), 2)
    assert peaks.dtype == np.float64 and peaks.shape == (len(ref.peaks), 1)
    np.testing.assert_array_equal(coords, ref.coords)
    np.testing.assert_array_equal(peaks[:, 0], ref.peaks.astype(np.float64))


# ---- the same results as tessera.xcorr ------------------------------------------------

def test_list_array_dict_bit_identical_to_tessera_xcorr(tiles_file):
    from conftest import read
    images, templates, pairs = read(tiles_file, "images"), read(tiles_file, "templates"), read(tiles_file, "pairs")
    ref = tessera.xcorr(images, templates, pairs, eps=F32_EPS ** 2, subpixel=False, progress=False)
    assert (ref.peaks > 0.5).sum() >= 8  # the simulated matching pairs are found

    assert_same_as_tessera(*run(images, templates, pairs), ref)
    assert_same_as_tessera(*run(list(images), list(templates), pairs.tolist()), ref)
    img_ids = [3 * k + 5 for k in range(len(images))]    # non-contiguous, not sorted like the input
    tpl_ids = [100 - 7 * k for k in range(len(templates))]
    dict_pairs = np.array([[img_ids[i], tpl_ids[t]] for i, t in pairs])
    coords, peaks = run(dict(zip(img_ids, images)), dict(zip(tpl_ids, templates)), dict_pairs)
    assert_same_as_tessera(coords, peaks, ref)


def test_options_do_not_change_the_results():
    rng = np.random.default_rng(3)
    images, templates = random_tiles(rng, 5, (40, 36), 6, (9, 11))
    pairs = np.array([[i, t] for i in range(5) for t in range(6) if (i + t) % 2 == 0])
    ref = tessera.xcorr(np.stack(images), np.stack(templates), pairs, eps=F32_EPS ** 2, crop=(2, 2),
                        subpixel=False, progress=False)
    for kw in ({}, {"group_correlations": True}, {"num_workers": 1}, {"num_workers": 3},
               {"num_workers": None}, {"use_gpu": True}, {"use_gpu": True, "num_gpus": 0},
               {"disable_pbar": False}):
        assert_same_as_tessera(*run(images, templates, pairs, crop_output=(2, 2), **kw), ref)


def test_chunks_give_the_same_results(monkeypatch):
    rng = np.random.default_rng(4)
    images, templates = random_tiles(rng, 7, (30, 26), 4, (6, 5))
    pairs = rng.integers(0, [7, 4], size=(25, 2))
    whole = run(images, templates, pairs, num_workers=1)
    calls = []
    real = bx_module._tessera_xcorr
    monkeypatch.setattr(bx_module, "_tessera_xcorr", lambda *a, **k: calls.append(1) or real(*a, **k))
    monkeypatch.setattr(bx_module, "_CHUNK_BYTES", 1)
    chunked = run(images, templates, pairs, num_workers=1)
    assert len(calls) >= 3  # two images per thread per call: at least 4 calls for 7 images
    np.testing.assert_array_equal(chunked[0], whole[0])
    np.testing.assert_array_equal(chunked[1], whole[1])


def test_integer_and_float64_frames_read_as_tessera_reads_them():
    rng = np.random.default_rng(5)
    images = (rng.random((3, 28, 33)) * 4000).astype(np.uint16)
    templates = images[:, 4:12, 10:19].copy()
    pairs = np.array([[0, 0], [1, 1], [2, 2], [0, 2]])
    # integers: float32's eps, as for float32 images (rcc-xcorr fails on them)
    ref = tessera.xcorr(images, templates, pairs, eps=F32_EPS ** 2, subpixel=False, progress=False)
    assert_same_as_tessera(*run(list(images), list(templates), pairs), ref)
    as64 = images.astype(np.float64)
    ref = tessera.xcorr(as64, templates.astype(np.float64), pairs, eps=F64_EPS ** 2, subpixel=False, progress=False)
    assert_same_as_tessera(*run(list(as64), list(templates.astype(np.float64)), pairs), ref)


# ---- against a direct float64 ZNCC, in rcc-xcorr's convention --------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_brute_force_reference(dtype):
    rng = np.random.default_rng(6)
    images, templates = random_tiles(rng, 3, (23, 31), 4, (7, 5), dtype)
    pairs = np.array([[0, 0], [1, 1], [2, 2], [0, 3], [1, 0], [2, 1]])
    coords, peaks = run({10: images[0], 20: images[1], 30: images[2]}, templates,
                        np.column_stack([10 * (pairs[:, 0] + 1), pairs[:, 1]]))
    eps = float(np.finfo(dtype).eps)
    for k, (i, t) in enumerate(pairs):
        (y, x), r = reference_peak(images[i], templates[t], eps)
        assert tuple(coords[k]) == (y, x), k
        assert abs(peaks[k, 0] - r) < 1e-5, k
    assert peaks[0, 0] > 0.9 and peaks[2, 0] > 0.9  # templates cut from their images


def test_known_offset_in_the_full_map_frame():
    rng = np.random.default_rng(7)
    image = rng.random((40, 50)).astype(np.float32)
    template = image[13:22, 31:38].copy()  # top-left corner at (13, 31), 9 x 7
    coords, peaks = run([image], [template], [[0, 0]])
    assert tuple(coords[0]) == (13 + 9 - 1, 31 + 7 - 1)  # (y - h + 1, x - w + 1) is the corner
    assert abs(peaks[0, 0] - 1.0) < 1e-5


def test_asymmetric_crop_is_applied_per_axis():
    """crop_output=(A, B): A rows, B columns, coordinates in the full map. rcc-xcorr
    searches the same region but reports (y + B, x + A)."""
    rng = np.random.default_rng(8)
    image = rng.random((30, 44))
    h, w, A, B = 7, 5, 4, 11
    template = image[14:14 + h, 2:2 + w].copy()  # exact copy: full-map peak (20, 6)
    full = reference_peak(image, template, F64_EPS)[0]
    assert full == (20, 6)
    # x = 6 < B: outside the per-axis region, inside the swapped one (rows >= 11, columns >= 4)
    swapped = reference_peak(image, template, F64_EPS, crop=(B, A))[0]
    assert swapped == full
    (y, x), r = reference_peak(image, template, F64_EPS, crop=(A, B))
    coords, peaks = run([image], [template], [[0, 0]], crop_output=(A, B))
    assert tuple(coords[0]) == (y, x) != full
    assert A <= y < 30 + h - 1 - A and B <= x < 44 + w - 1 - B
    assert tuple(coords[0]) != (y - A + B, x - B + A)  # rcc-xcorr's swapped offsets
    assert abs(peaks[0, 0] - r) < 1e-5
    ref = tessera.xcorr(image[None], template[None], [[0, 0]], crop=(A, B), eps=F64_EPS ** 2,
                        subpixel=False, progress=False)
    assert_same_as_tessera(coords, peaks, ref)


def test_default_eps_is_rcc_xcorrs_and_bounds_the_square_root():
    """R = 0 where sqrt(window SSD * template SSD) <= eps; eps = the image dtype's
    machine epsilon unless override_eps."""
    rng = np.random.default_rng(9)
    image = rng.random((24, 30)).astype(np.float32)
    image[11, 17] = 5.0
    template = np.zeros((5, 7), np.float32)
    # template SSD ~ spike**2: denominators ~ spike * sqrt(window SSD), ~5 * spike at the peak;
    # 5e-7 is above float32's eps but below tessera's own default (1e-6 on their square)
    for spike, kw, eps in ((1e-7, {}, F32_EPS), (1e-4, {}, F32_EPS),
                           (1e-4, {"override_eps": True, "custom_eps": 1e-5}, 1e-5)):
        template[2, 3] = spike
        coords, peaks = run([image], [template], [[0, 0]], **kw)
        (y, x), r = reference_peak(image, template, eps)
        assert (y, x) == (13, 20) and r > 0.9
        assert tuple(coords[0]) == (y, x)
        assert abs(peaks[0, 0] - r) < 1e-5
    # every denominator is below 1e-3: the map is 0, the first placement wins
    coords, peaks = run([image], [template], [[0, 0]], override_eps=True, custom_eps=1e-3)
    assert tuple(coords[0]) == (0, 0) and peaks[0, 0] == 0.0
    assert np.all(zncc_full(image, template, 1e-3) == 0)


def test_flat_windows_are_exactly_zero():
    """Inside a constant image with a large offset every full-overlap window is
    flat: R is exactly 0 there (rcc-xcorr's float32 running sums give spurious
    values), so with the search cropped to those windows the first one wins."""
    image = np.full((20, 24), 1000.0, np.float32)
    template = np.random.default_rng(10).random((4, 5)).astype(np.float32)
    coords, peaks = run([image], [template], [[0, 0]], crop_output=(3, 4))  # the full-overlap block
    assert tuple(coords[0]) == (3, 4) and peaks[0, 0] == 0.0
    # and outside the crop the border windows (image and padding) are not flat
    coords, peaks = run([image], [template], [[0, 0]])
    (y, x), r = reference_peak(image, template, F32_EPS)
    assert r > 0.1 and tuple(coords[0]) == (y, x) and abs(peaks[0, 0] - r) < 1e-5


# ---- the caller's arrays, and bad input -------------------------------------------------

def test_normalize_input_leaves_the_callers_arrays_unmodified():
    rng = np.random.default_rng(12)
    images, templates = random_tiles(rng, 3, (26, 21), 3, (6, 8))
    images[1] = images[1].astype(np.float64) + 100.0
    stack = np.stack([im.astype(np.float32) for im in images]) + 7.0
    kept = [im.copy() for im in images], [t.copy() for t in templates], stack.copy()
    pairs = [[0, 0], [1, 1], [2, 2], [1, 0], [0, 2]]
    listed = run(images, templates, pairs, normalize_input=True)
    stacked = run(stack, np.stack(templates), pairs, normalize_input=True, group_correlations=True)
    for a, b in zip(images + templates + [stack], kept[0] + kept[1] + [kept[2]]):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    ref = tessera.xcorr(stack, np.stack(templates), pairs, normalize_input=True, eps=F32_EPS ** 2,
                        subpixel=False, progress=False)
    assert_same_as_tessera(*stacked, ref)
    assert listed[0].shape == (5, 2)


def test_nan_in_an_image_names_it():
    rng = np.random.default_rng(13)
    images = {5: rng.random((20, 20)), 9: rng.random((20, 20))}
    images[9][4, 7] = np.nan
    templates = [rng.random((5, 5))]
    with pytest.raises(ValueError, match=r"images\[9\] has a non-finite value \(nan\) at \(4, 7\)"):
        run(images, templates, [[5, 0], [9, 0]])
    run(images, templates, [[5, 0]])  # only the frames the correlations use are read
    templates[0][1, 2] = np.inf
    with pytest.raises(ValueError, match=r"templates\[0\] has a non-finite value \(inf\)"):
        run(images, templates, [[5, 0]])
    big = [rng.random((20, 20)) * 1e39]
    with pytest.raises(ValueError, match=r"images\[0\] has a value beyond float32's range"):
        run(big, [rng.random((5, 5))], [[0, 0]])


def test_ids_out_of_range_raise_before_any_work():
    rng = np.random.default_rng(14)
    images, templates = [rng.random((12, 12)) for _ in range(3)], [rng.random((4, 4))]
    for pairs, what in (([[0, 0], [3, 0]], r"correlation 1 names image 3, outside \[0, 3\)"),
                        ([[-1, 0]], "names image -1"),
                        ([[0, 1]], r"names template 1, outside \[0, 1\)")):
        with pytest.raises(CorrelationIdError, match=what) as err:
            run(images, templates, pairs)
        assert isinstance(err.value, ValueError) and isinstance(err.value, IndexError)
    with pytest.raises(IndexError, match="names image 4, which is not a key of images"):
        run({2: images[0], 6: images[1]}, templates, [[2, 0], [4, 0]])
    with pytest.raises(ValueError, match="names image 7, outside"):
        run(np.stack(images), np.stack(templates), [[7, 0]])
    with pytest.raises(TypeError, match="integer ids"):
        run(images, templates, [[0.0, 0.0]])
    with pytest.raises(ValueError, match=r"expected \[p, 2\]"):
        run(images, templates, [[0, 0, 0]])


def test_wrong_dimensionality_raises():
    rng = np.random.default_rng(15)
    good, tpl = rng.random((12, 12)), rng.random((4, 4))
    with pytest.raises(ValueError, match=r"images\[1\]: expected 2 dimensions, got shape \(2, 12, 12\)"):
        run([good, rng.random((2, 12, 12))], [tpl], [[0, 0], [1, 0]])
    with pytest.raises(ValueError, match=r"templates\[0\]: expected 2 dimensions"):
        run([good], [rng.random(4)], [[0, 0]])
    with pytest.raises(ValueError, match=r"images: expected an array \[n, H, W\]"):
        run(good, [tpl], [[0, 0]])
    with pytest.raises(TypeError, match="numeric"):
        run([good.astype(complex)], [tpl], [[0, 0]])


def test_template_larger_than_image_raises():
    rng = np.random.default_rng(16)
    with pytest.raises(ValueError, match=r"templates\[1\] \(9x4\) is larger than images\[0\] \(8x20\)"):
        run([rng.random((8, 20))], [rng.random((4, 4)), rng.random((9, 4))], [[0, 0], [0, 1]])


def test_bad_crop_raises():
    rng = np.random.default_rng(17)
    images, templates = [rng.random((10, 16))], [rng.random((3, 3))]
    with pytest.raises(ValueError, match="crop_output"):
        run(images, templates, [[0, 0]], crop_output=(6, 0))  # 12 rows in the map
    run(images, templates, [[0, 0]], crop_output=(5, 8))      # one row and one column left
    for crop in ((-1, 0), (1, 2, 3), (1.5, 1)):
        with pytest.raises(ValueError, match="crop_output"):
            BatchXCorr(images, templates, [[0, 0]], crop_output=crop)


def test_mixed_shapes_in_dicts_keep_the_order():
    rng = np.random.default_rng(18)
    images = {2: rng.random((20, 30)), 7: rng.random((26, 22)).astype(np.float32), 11: rng.random((20, 30))}
    templates = {0: images[2][3:8, 10:17].copy(), 4: rng.random((6, 6)).astype(np.float32),
                 9: images[7][12:17, 1:8].copy()}
    pairs = np.array([[7, 9], [2, 0], [11, 4], [7, 4], [2, 9], [11, 0], [2, 4], [7, 0]])
    coords, peaks = run(images, templates, pairs, crop_output=(1, 1))
    assert coords.shape == (8, 2) and peaks.shape == (8, 1)
    for k, (i, t) in enumerate(pairs):
        im, tp = images[int(i)], templates[int(t)]
        eps = float(np.finfo(im.dtype).eps)
        one = tessera.xcorr(im, tp, [[0, 0]], crop=1, eps=eps ** 2, subpixel=False, progress=False)
        assert tuple(coords[k]) == tuple(one.coords[0]), k
        assert peaks[k, 0] == np.float64(one.peaks[0]), k
        (y, x), r = reference_peak(im, tp, eps, crop=(1, 1))
        assert tuple(coords[k]) == (y, x) and abs(peaks[k, 0] - r) < 1e-5, k
    assert peaks[0, 0] > 0.999 and peaks[1, 0] > 0.999


def test_empty_correlations():
    coords, peaks = run([np.ones((5, 5))], [np.ones((2, 2))], np.zeros((0, 2), int))
    assert coords.shape == (0, 2) and coords.dtype == np.int64
    assert peaks.shape == (0, 1) and peaks.dtype == np.float64


def test_description_mentions_the_counts():
    rng = np.random.default_rng(19)
    b = BatchXCorr({1: rng.random((9, 9)), 4: rng.random((9, 9)), 8: rng.random((9, 9))},
                   [rng.random((3, 3))] * 2, [[1, 0], [4, 1], [8, 0], [1, 1]], use_gpu=False, num_workers=2)
    d = b.description()
    assert isinstance(d, str) and d.startswith("BatchXCorr(use_gpu: False")
    for part in ("images: 3", "templates: 2", "correlations: 4", "num_workers: 2", "backend: cpu"):
        assert part in d, (part, d)
