"""rcc-xcorr's ``BatchXCorr`` computed by ``tessera.xcorr``.

Replace ``from rcc_xcorr.xcorr import BatchXCorr`` by::

    from tessera.compat.rcc_xcorr.xcorr import BatchXCorr

    batch = BatchXCorr.BatchXCorr(images, templates, correlations, crop_output=(0, 0),
                                  use_gpu=True, num_gpus=1, num_workers=8,
                                  group_correlations=True)
    coords, peaks = batch.execute_batch()

``images`` and ``templates`` are what rcc-xcorr takes: a list of 2-D arrays, an
array [n, H, W], or a dict {integer id: 2-D array}; ``correlations`` is [p, 2]
integers (image id, template id). Frames may be of any numeric type and, in a
list or dict, of different shapes. ``execute_batch()`` returns, in the order of
``correlations``, as rcc-xcorr does:

- ``coords``: int64 [p, 2], (y, x) of the peak in the full (H+h-1) x (W+w-1)
  correlation map (the template's top-left corner lies at image position
  (y - h + 1, x - w + 1)), whatever the crop;
- ``peaks``: float64 [p, 1], the zero-normalised correlation at the peak.

How the arguments map onto ``tessera.xcorr``: the map is full-mode;
``crop_output=(A, B)`` -> ``crop=(A, B)``; ``normalize_input`` -> the same;
``use_gpu=True`` -> ``backend="auto"`` (the GPU where one is present, else the
CPU), ``False`` -> ``"cpu"``; ``num_workers`` -> ``threads``; ``disable_pbar``
-> ``progress``; the eps threshold as rcc-xcorr's (below).

Differences from rcc-xcorr, each on purpose:

1. ``crop_output=(A, B)`` skips A rows at the top and bottom and B columns at
   the left and right of the map (as rcc-xcorr searches), and the coordinates
   are in the full map. rcc-xcorr adds B to y and A to x, so for A != B its
   coordinates are not those of the peak it found. Equal for A == B.
2. A window where every pixel of the zero-padded image is equal has R = 0
   exactly, and the window sums are double: rcc-xcorr's float32 running sums give
   such windows |R| up to 0.015 (a flat region can win the argmax) and its peaks
   are off by up to ~3e-5; here peaks agree with a float64 reference to within
   1e-5, typically 1e-6 (float32 values, returned as float64). Inputs are read
   as float32.
3. ``normalize_input=True`` subtracts each image's mean on a copy: the caller's
   arrays are never modified (rcc-xcorr's CPU path subtracts in place, again for
   every correlation using the image, and fails on integer arrays). The template's
   mean is not subtracted: R does not depend on it.
4. A NaN or infinity (or a float64 value beyond float32's range) in an image or
   template used by a correlation raises ValueError naming it, before any work;
   in rcc-xcorr a NaN wins the argmax.
5. eps, as rcc-xcorr: R = 0 where sqrt((S2 - S1^2/A) * SSD_T) <= eps, with
   eps = ``custom_eps`` when ``override_eps`` else the machine epsilon of the
   image's dtype (np.finfo; 1.19e-7 for float32, 2.2e-16 for float64), and
   float32's for integer images (on which rcc-xcorr fails). ``tessera.xcorr``'s
   eps bounds the square of that denominator, so this layer passes eps**2.
6. ``use_gpu=True`` without a usable GPU runs on the CPU; rcc-xcorr raises
   RuntimeError.
7. ``num_gpus``: tessera uses one CUDA device per process, the first visible one
   (choose it with CUDA_VISIBLE_DEVICES; run one process per device to use
   several); ``num_gpus=0`` means the CPU. rcc-xcorr spreads correlations round
   robin over up to ``num_gpus`` devices.
8. ``num_workers`` is the number of CPU threads (0 or None: every core this
   process may use); ``group_correlations`` is accepted and changes nothing:
   tessera always groups correlations by image and transforms each image and
   template once per call (rcc-xcorr re-transforms the image for every pair).
   Results are bit-identical whatever either value.
9. Every correlation is checked before any work: an id outside the list or array
   (negative ones included: rcc-xcorr would wrap them to the end) or missing from
   the dict raises ``CorrelationIdError`` (a ValueError and an IndexError);
   non-integer ids raise TypeError; a frame that is not 2-D, a template larger
   than its image, or a crop that leaves nothing to search raise ValueError.
10. Frames of one shape are copied as float32 into stacks for ``tessera.xcorr``,
   in chunks (``_CHUNK_BYTES``, at least two images per thread), so the extra
   memory is bounded; rcc-xcorr pads a copy per correlation.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any, Dict, List, Tuple

import numpy as np

from tessera._util import Progress, number as _number
from tessera._xcorr import xcorr as _tessera_xcorr

#: Frames (images and templates, as float32) stacked for one call of tessera.xcorr
#: at most, unless two images per thread need more: the bound on the extra memory.
_CHUNK_BYTES = 1 << 30
_IMAGES_PER_THREAD = 2
_FLOAT32_MAX = float(np.finfo(np.float32).max)


class CorrelationIdError(ValueError, IndexError):
    """A correlation names an image or template id that the input does not hold."""


class BatchXCorr:
    """Zero-normalised cross-correlation of (image, template) pairs, as rcc-xcorr.

    Same arguments and defaults as ``rcc_xcorr.xcorr.BatchXCorr.BatchXCorr``;
    see the module docstring for what each does here.
    """

    def __init__(self, images, templates, correlations,
                 normalize_input=False,
                 group_correlations=False,
                 crop_output=(0, 0),
                 use_gpu=True,
                 num_gpus=4,
                 num_workers=4,
                 override_eps=False,
                 custom_eps=1e-6,
                 disable_pbar=False):
        self.images = images
        self.templates = templates
        self.correlations = correlations
        self.normalize_input = normalize_input
        self.group_correlations = group_correlations
        self.crop_output = crop_output
        self.use_gpu = use_gpu
        self.num_gpus = num_gpus
        self.num_workers = num_workers
        self.override_eps = override_eps
        self.custom_eps = custom_eps
        self.disable_pbar = disable_pbar
        # The options are checked now, the data when the batch runs.
        self._crop = _crop(crop_output)
        self._threads = _count(num_workers, "num_workers")
        gpus = _count(num_gpus, "num_gpus")
        self._backend = "auto" if use_gpu and (num_gpus is None or gpus > 0) else "cpu"
        if override_eps:
            eps = _number(custom_eps, "custom_eps")
            if not (math.isfinite(eps) and eps >= 0):
                raise ValueError(f"custom_eps: expected a finite number >= 0, got {custom_eps!r}")

    def description(self) -> str:
        return (f"BatchXCorr(use_gpu: {self.use_gpu}, num_gpus: {self.num_gpus}, "
                f"num_workers: {self.num_workers}, images: {_size(self.images)}, "
                f"templates: {_size(self.templates)}, correlations: {_size(self.correlations)}, "
                f"tessera backend: {self._backend})")

    def execute_batch(self) -> Tuple[np.ndarray, np.ndarray]:
        """(coords int64 [p, 2] (y, x) in the full map, peaks float64 [p, 1]), in the
        order of the correlations."""
        pairs = _correlations(self.correlations)
        n = len(pairs)
        coords = np.zeros((n, 2), np.int64)
        peaks = np.zeros((n, 1), np.float64)
        if n == 0:
            return coords, peaks
        images = _Frames(self.images, "images")
        templates = _Frames(self.templates, "templates")
        for p, (i, t) in enumerate(pairs.tolist()):
            images.add(i, p, "image")
            templates.add(t, p, "template")

        # One call of tessera.xcorr per (image shape, template shape, eps), in chunks.
        groups: Dict[tuple, List[int]] = {}
        for p, (i, t) in enumerate(pairs.tolist()):
            im, tp = images.frames[i], templates.frames[t]
            _check_fits(p, i, im.shape, t, tp.shape, self._crop)
            groups.setdefault((im.shape, tp.shape, self._eps(im.dtype)), []).append(p)

        threads = self._threads or _usable_cores()
        bar = Progress(n, "pairs", not self.disable_pbar)
        progress = bar.hook() or False
        try:
            for (im_shape, tp_shape, eps), members in groups.items():
                for chunk in _chunks(members, pairs, im_shape, tp_shape, threads):
                    img_ids = sorted({int(pairs[p, 0]) for p in chunk})
                    tpl_ids = sorted({int(pairs[p, 1]) for p in chunk})
                    local = _local_pairs(pairs[chunk], img_ids, tpl_ids)
                    r = _tessera_xcorr(images.stack(img_ids), templates.stack(tpl_ids), local,
                                       mode="full", crop=self._crop, subpixel=False,
                                       eps=eps,
                                       normalize_input=bool(self.normalize_input),
                                       threads=self._threads, backend=self._backend, device=-1,
                                       progress=progress)
                    coords[chunk] = r.coords
                    peaks[chunk, 0] = r.peaks
        finally:
            bar.close()
        return coords, peaks

    def _eps(self, dtype: np.dtype) -> float:
        """rcc-xcorr's threshold on the denominator for an image of this dtype."""
        if self.override_eps:
            eps = float(self.custom_eps)
        else:
            eps = float(np.finfo(dtype if dtype.kind == "f" else np.float32).eps)
        return eps * eps  # tessera.xcorr's eps bounds the squared denominator


class _Frames:
    """The frames a batch uses, each fetched and checked once, by id."""

    def __init__(self, container: Any, name: str):
        if isinstance(container, np.ndarray) and container.ndim != 3:
            raise ValueError(f"{name}: expected an array [n, H, W] or a list or dict of 2-D arrays, "
                             f"got an array of shape {tuple(container.shape)}")
        self.container = container
        self.name = name
        self.is_map = isinstance(container, Mapping)
        self.count = None if self.is_map else len(container)
        self.frames: Dict[int, np.ndarray] = {}

    def add(self, key: int, p: int, what: str) -> None:
        if key in self.frames:
            return
        if self.is_map:
            if key not in self.container:
                raise CorrelationIdError(f"correlation {p} names {what} {key}, which is not a key of {self.name}")
        elif not 0 <= key < self.count:
            raise CorrelationIdError(f"correlation {p} names {what} {key}, outside [0, {self.count}) of {self.name}")
        label = f"{self.name}[{key}]"
        a = np.asarray(self.container[key])
        if a.dtype.kind not in "biuf":
            raise TypeError(f"{label}: expected a numeric array, got dtype {a.dtype}")
        if a.ndim != 2:
            raise ValueError(f"{label}: expected 2 dimensions, got shape {tuple(a.shape)}")
        if a.size == 0:
            raise ValueError(f"{label}: is empty (shape {tuple(a.shape)})")
        _check_values(a, label)
        self.frames[key] = a

    def stack(self, keys: List[int]) -> np.ndarray:
        """The frames as one float32 array (the type tessera reads them as)."""
        out = np.empty((len(keys),) + self.frames[keys[0]].shape, np.float32)
        for j, k in enumerate(keys):
            out[j] = self.frames[k]
        return out


def _check_values(a: np.ndarray, label: str) -> None:
    """Every value finite and within float32's range (tessera reads float32)."""
    if a.dtype.kind != "f":
        return
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(a) if a.dtype.itemsize <= 4 else np.abs(a) <= _FLOAT32_MAX
    if ok.all():
        return
    y, x = (int(v) for v in np.argwhere(~ok)[0])
    v = a[y, x]
    kind = "a non-finite value" if not np.isfinite(v) else "a value beyond float32's range"
    raise ValueError(f"{label} has {kind} ({v}) at ({y}, {x})")


def _check_fits(p: int, i: int, im: tuple, t: int, tp: tuple, crop: Tuple[int, int]) -> None:
    (H, W), (h, w) = im, tp
    if h > H or w > W:
        raise ValueError(f"correlation {p}: templates[{t}] ({h}x{w}) is larger than images[{i}] ({H}x{W}); "
                         "each template must fit inside its image (as normxcorr2)")
    if 2 * crop[0] >= H + h - 1 or 2 * crop[1] >= W + w - 1:
        raise ValueError(f"crop_output {crop}: leaves no placement of the {H + h - 1}x{W + w - 1} map of "
                         f"correlation {p} (images[{i}] {H}x{W}, templates[{t}] {h}x{w}) to search")


def _chunks(members: List[int], pairs: np.ndarray, im_shape: tuple, tp_shape: tuple,
            threads: int) -> List[List[int]]:
    """The pairs of one group, sorted by image, cut where the stacked frames
    would exceed the budget."""
    members = sorted(members, key=lambda p: int(pairs[p, 0]))
    im_bytes, tp_bytes = 4 * math.prod(im_shape), 4 * math.prod(tp_shape)
    budget = max(_CHUNK_BYTES, _IMAGES_PER_THREAD * threads * (im_bytes + tp_bytes))
    chunks: List[List[int]] = []
    chunk: List[int] = []
    seen_i: set = set()
    seen_t: set = set()
    used = 0
    for p in members:
        i, t = int(pairs[p, 0]), int(pairs[p, 1])
        add = (im_bytes if i not in seen_i else 0) + (tp_bytes if t not in seen_t else 0)
        if chunk and used + add > budget:
            chunks.append(chunk)
            chunk, seen_i, seen_t, used = [], set(), set(), 0
            add = im_bytes + tp_bytes
        chunk.append(p)
        seen_i.add(i)
        seen_t.add(t)
        used += add
    chunks.append(chunk)
    return chunks


def _local_pairs(sub: np.ndarray, img_ids: List[int], tpl_ids: List[int]) -> np.ndarray:
    """The pairs as indices into the stacks of img_ids and tpl_ids (both sorted)."""
    return np.stack([np.searchsorted(img_ids, sub[:, 0]), np.searchsorted(tpl_ids, sub[:, 1])],
                    axis=1).astype(np.int64)


def _correlations(correlations: Any) -> np.ndarray:
    c = np.asarray(correlations)
    if c.size == 0:
        return np.zeros((0, 2), np.int64)
    if c.ndim != 2 or c.shape[1] != 2:
        raise ValueError(f"correlations: expected [p, 2] (image id, template id), got shape {tuple(c.shape)}")
    if c.dtype.kind not in "iu":
        raise TypeError(f"correlations: expected integer ids, got dtype {c.dtype}")
    if c.dtype.kind == "u" and c.dtype.itemsize == 8 and c.max() > np.iinfo(np.int64).max:
        raise CorrelationIdError(f"correlations: id {c.max()} is too large")
    return c.astype(np.int64)


def _crop(crop: Any) -> Tuple[int, int]:
    if _is_int(crop):
        a = b = crop
    else:
        try:
            a, b = crop
        except (TypeError, ValueError):
            raise ValueError(f"crop_output: expected (rows, columns), got {crop!r}") from None
    if not (_is_int(a) and _is_int(b)) or a < 0 or b < 0:
        raise ValueError(f"crop_output: expected two integers >= 0, got {crop!r}")
    return int(a), int(b)


def _count(value: Any, name: str) -> int:
    if value is None:
        return 0
    if not _is_int(value) or value < 0:
        raise ValueError(f"{name}: expected an integer >= 0, got {value!r}")
    return int(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _size(x: Any) -> Any:
    try:
        return len(x)
    except TypeError:
        return "?"


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1
