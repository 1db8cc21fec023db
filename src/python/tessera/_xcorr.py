"""tessera.xcorr: the batch cross-correlation of `tessera xcorr` on arrays."""

from __future__ import annotations

import os
from typing import Any, Callable, Optional, Union

import numpy as np

from . import _core
from ._util import Progress, as_array, integer, number, text


class XcorrResult:
    """Per pair, in the order of the pairs (`tessera xcorr`'s datasets).

    coords : int64 [p, 2], (y, x) of the peak in the full (H+h-1) x (W+w-1) map
    peaks : float32 [p], the zero-normalised correlation R at the peak
    quality : float32 [p, 2], sharpness and peak_ratio
    subpixel : float64 [p, 2], the peak refined by a parabola (None when
        subpixel=False)
    top_coords : int64 [p, K, 2], with top=K (else None): (y, x) of the K highest
        local maxima of the searched region, highest first, each more than
        min_distance from every higher one; (-1, -1) where there are fewer
    top_peaks : float32 [p, K], R there (NaN where there are fewer); else None
    """

    def __init__(self, raw: dict, subpixel: bool):
        self.coords: np.ndarray = raw["coords"]
        self.peaks: np.ndarray = raw["peaks"]
        self.quality: np.ndarray = raw["quality"]
        self.subpixel: Optional[np.ndarray] = raw["subpixel"] if subpixel else None
        self.top_coords: Optional[np.ndarray] = raw.get("top_coords")
        self.top_peaks: Optional[np.ndarray] = raw.get("top_peaks")

    def __len__(self) -> int:
        return len(self.peaks)

    def __repr__(self) -> str:
        return f"<tessera.XcorrResult {len(self)} pairs>"


def _stack(x: Any, name: str, what: str) -> np.ndarray:
    """[n, H, W] from an array, one 2-D array, or a list of same-shaped 2-D arrays."""
    if isinstance(x, (list, tuple)):
        if len(x) == 0:
            raise ValueError(f"{name}: empty")
        frames = [as_array(f, f"{name}[{i}]", 2, "[H, W]") for i, f in enumerate(x)]
        shapes = {f.shape for f in frames}
        if len(shapes) > 1:
            raise ValueError(f"{name}: frames of different shapes {sorted(shapes)}")
        return np.stack(frames)
    a = as_array(x, name)
    if a.ndim == 2:
        return a[None]
    if a.ndim != 3:
        raise ValueError(f"{name}: expected 3 dimensions {what}, got shape {tuple(a.shape)}")
    return a


def _crop(crop: Any) -> tuple:
    if isinstance(crop, (int, np.integer)) and not isinstance(crop, bool):
        return int(crop), int(crop)
    try:
        a, b = crop
    except (TypeError, ValueError):
        raise ValueError(f"crop: expected A or (A, B), got {crop!r}") from None
    return integer(a, "crop"), integer(b, "crop")


def xcorr(images: Any, templates: Any, pairs: Any, *, mode: str = "full", crop: Any = (0, 0),
          subpixel: bool = True, eps: float = 1e-6, min_overlap: float = 0.0, normalize_input: bool = False,
          exclusion: int = 5, top: Optional[int] = None, min_distance: Optional[int] = None,
          threads: int = 0, backend: str = "auto", device: int = -1,
          image_masks: Any = None, template_masks: Any = None, fft_wisdom: Any = None,
          progress: Union[bool, Callable[[int], Any]] = True) -> XcorrResult:
    """Zero-normalised cross-correlation of (image, template) pairs, as `tessera xcorr`.

    Parameters
    ----------
    images : [n, H, W] (or a list of [H, W] arrays), any numeric type
    templates : [k, h, w] (or a list), each no larger than the images
    pairs : [p, 2] integers: image index, template index
    mode : "full" (every overlap, as normxcorr2) or "valid" (full overlap, as OpenCV)
    crop : A or (A, B): rows skipped at the top and bottom, columns at the left and
        right of the full map in the peak search (coordinates stay in the full map)
    subpixel : also return the peak refined by a parabola
    eps : R = 0 where the squared denominator (window SSD * template SSD) is <= eps
    min_overlap : R = 0 where fewer than this fraction of the template's (valid)
        pixels overlap the image's (valid) ones (0 to 1; 0.3-0.5 for EM tiles)
    normalize_input : subtract each image's mean first (the caller's arrays are
        never modified)
    exclusion : peak_ratio's second value is the best farther than this from the peak
    top : K (>= 1) for --top: also return top_coords and top_peaks, the K highest
        local maxima (each >= its 8 neighbours) of the searched region
    min_distance : --min-distance, only with top: each kept maximum lies more than
        this many placements (Chebyshev) from every higher one (None: exclusion)
    threads : 0 = the cores this process may use
    backend : "auto", "cpu" or "cuda";  device : CUDA device
    image_masks, template_masks : shaped like images / templates (or a list of
        2-D masks), any numeric type, nonzero = valid: R is the correlation over
        the pixels valid in both (masked ZNCC, as --image-masks/--template-masks;
        backend "auto" picks the CPU; "cuda" does their correlations with cuFFT)
    fft_wisdom : path of an FFT wisdom file (as --fft-wisdom): FFTW_MEASURE plans read
        from it, or measured once and written to it; the command given the same file
        gives the same bits. None: FFTW_ESTIMATE plans
    progress : True (a bar after a second; tqdm when installed), False, or a callable

    Returns an XcorrResult in the order of the pairs. Raises ValueError (the
    command's message: a NaN, an index out of range, a template too large) or
    TypeError.
    """
    im = _stack(images, "images", "[n, H, W]")
    tp = _stack(templates, "templates", "[k, h, w]")
    pr = as_array(pairs, "pairs")
    if pr.ndim == 1 and pr.shape[0] == 2:
        pr = pr[None]
    if pr.ndim != 2 or pr.shape[1] != 2:
        raise ValueError(f"pairs: expected [p, 2] (image, template), got shape {tuple(pr.shape)}")
    if pr.dtype.kind == "f":
        raise TypeError("pairs: expected integers, got dtype " + str(pr.dtype))
    im_masks = None if image_masks is None else _stack(image_masks, "image_masks", "[n, H, W]")
    tp_masks = None if template_masks is None else _stack(template_masks, "template_masks", "[k, h, w]")
    cy, cx = _crop(crop)
    opts = {
        "crop_y": cy, "crop_x": cx, "eps": number(eps, "eps"), "min_overlap": number(min_overlap, "min_overlap"),
        "normalize_input": bool(normalize_input),
        "mode": text(mode, "mode"), "exclusion": integer(exclusion, "exclusion"),
        "threads": integer(threads, "threads"), "backend": text(backend, "backend"),
        "device": integer(device, "device"),
        "fft_wisdom": "" if fft_wisdom is None else os.fspath(fft_wisdom),
    }
    if top is not None:
        opts["top"] = integer(top, "top")
    if min_distance is not None:
        opts["min_distance"] = integer(min_distance, "min_distance")
    bar = Progress(int(pr.shape[0]), "pairs", progress)
    try:
        raw = _core.xcorr(im, tp, pr, opts, bar.hook(), im_masks, tp_masks)
    finally:
        bar.close()
    return XcorrResult(raw, bool(subpixel))
