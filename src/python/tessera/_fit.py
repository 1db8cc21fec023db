"""tessera.fit and tessera.fit_spectra: the pixel-wise fit of `tessera fit` on arrays."""

from __future__ import annotations

import os
from typing import Any, Callable, Dict, Optional, Sequence, Tuple, Union

import numpy as np

from . import _core
from ._util import Progress, as_array, integer, named_numbers, named_texts, names, number, text

_BUILTIN = ("lorentzian", "gaussian", "stretched_exp", "damped_cosine")


class FitResult:
    """The maps of a fit, as `tessera fit` writes them.

    Attributes
    ----------
    params, sigma : dict of name -> numpy array
        Each parameter's fitted value and one-sigma uncertainty, shaped like the
        output grid ([ny, nx] for a cube, [n_fits] for fit_spectra).
    chi2 : float32 array
        Chi-square (least squares) or deviance (mle).
    state : int32 array
        0 converged, 1 iteration_limit, 2 singular, 3 nonfinite_input, 4 masked,
        5 bad_start (tessera.STATE_NAMES).
    iterations : int32 array
    derived, derived_sigma : dict of name -> array
        Maps computed from the parameters (bnv0... for the peak models, a model
        file's or `derive=`'s) and their one-sigma maps.
    param_names, param_units : list of str
    model, backend : str
    state_counts : dict of state name -> count
    """

    def __init__(self, raw: dict, shape: Tuple[int, ...], sweep: np.ndarray, attrs: dict):
        self.model: str = raw["model"]
        self.param_names: list = list(raw["param_names"])
        self.param_units: list = list(raw["param_units"])
        self.shape = shape
        reshape = (lambda a: a.reshape(shape)) if shape != (raw["ny"], raw["nx"]) else (lambda a: a)
        self.params: Dict[str, np.ndarray] = {n: reshape(a) for n, a in zip(self.param_names, raw["params"])}
        self.sigma: Dict[str, np.ndarray] = {n: reshape(a) for n, a in zip(self.param_names, raw["sigma"])}
        self.derived: Dict[str, np.ndarray] = {n: reshape(a) for n, a in zip(raw["derived_names"], raw["derived"])}
        self.derived_sigma: Dict[str, np.ndarray] = {
            n: reshape(a) for n, a in zip(raw["derived_names"], raw["derived_sigma"])}
        self.derived_definition: str = raw["derived_definition"]
        self.chi2: np.ndarray = reshape(raw["chi2"])
        self.state: np.ndarray = reshape(raw["state"])
        self.iterations: np.ndarray = reshape(raw["iterations"])
        self.state_counts: Dict[str, int] = dict(zip(_core.state_names, raw["state_counts"]))
        self.backend: str = raw["backend"]
        self.x_mid: float = raw["x_mid"]
        self.sweep = sweep
        self._attrs = attrs

    def __repr__(self) -> str:
        counts = ", ".join(f"{k} {v}" for k, v in self.state_counts.items() if v)
        return (f"<tessera.FitResult {self.model}, {'x'.join(map(str, self.shape))}, "
                f"params {', '.join(self.param_names)}; {counts}; {self.backend}>")

    def to_hdf5(self, path: Union[str, os.PathLike], force: bool = False) -> None:
        """Writes the maps as `tessera fit` does: /params/NAME, /sigma/NAME,
        /derived/NAME, /derived_sigma/NAME, /chi2, /state, /iterations, /sweep and
        the attributes that tools/plot and the README describe. Written to
        PATH.partial, renamed when complete; an existing file is refused
        (FileExistsError) unless force."""
        import h5py

        path = os.fspath(path)
        if os.path.exists(path) and not force:
            raise FileExistsError(f"{path} exists (force=True to overwrite)")
        partial = path + ".partial"
        try:
            with h5py.File(partial, "w") as f:
                for group, maps in (("params", self.params), ("sigma", self.sigma)):
                    for n in self.param_names:
                        f.create_dataset(f"/{group}/{n}", data=maps[n])
                if self.derived:
                    for n, a in self.derived.items():
                        f.create_dataset(f"/derived/{n}", data=a)
                    for n, a in self.derived_sigma.items():
                        f.create_dataset(f"/derived_sigma/{n}", data=a)
                    own = self.model not in _BUILTIN
                    f["/derived"].attrs["definition" if own else "bnv_definition"] = self.derived_definition
                f.create_dataset("/chi2", data=self.chi2)
                f.create_dataset("/state", data=self.state)
                f.create_dataset("/iterations", data=self.iterations)
                f.create_dataset("/sweep", data=np.asarray(self.sweep, dtype=np.float64))
                a = f.attrs
                a["model"] = self.model
                for k, v in self._attrs.items():
                    a[k] = v
                a["x_mid"] = self.x_mid
                a["param_names"] = self.param_names
                a["param_units"] = self.param_units
                a["version"] = "tessera " + _core.version
                a["backend"] = self.backend
                a["ranks"] = np.int64(1)
                a["state_names"] = list(_core.state_names)
                a["state_counts"] = np.array([self.state_counts[n] for n in _core.state_names], dtype=np.float64)
                a["written_by"] = "tessera (Python)"
                a["complete"] = np.int64(1)
            os.replace(partial, path)
        except BaseException:
            if os.path.exists(partial):
                os.remove(partial)
            raise


def _roi_text(roi: Any) -> str:
    if roi is None or roi == "":
        return ""
    if isinstance(roi, str):
        return roi
    try:
        y0, y1, x0, x1 = (integer(v, "roi") for v in roi)
    except (TypeError, ValueError):
        raise ValueError("roi: expected 'y0:y1,x0:x1' or (y0, y1, x0, x1)") from None
    return f"{y0}:{y1},{x0}:{x1}"


def _bounds(bounds: Any) -> list:
    if bounds is None:
        return []
    if isinstance(bounds, (str, list, tuple)) and all(isinstance(b, str) for b in
                                                      ([bounds] if isinstance(bounds, str) else bounds)):
        out = []  # the command's NAME=LO:HI
        for item in [bounds] if isinstance(bounds, str) else bounds:
            if "=" not in item or ":" not in item.split("=", 1)[1]:
                raise ValueError(f"bounds {item}: expected NAME=LO:HI")
            key, rest = item.split("=", 1)
            lo, hi = rest.split(":", 1)
            out.append((key, (float(lo), float(hi))))
        return out
    if not isinstance(bounds, dict):
        raise TypeError("bounds: expected {name: (lo, hi)}")
    out = []
    for key, lo_hi in bounds.items():
        try:
            lo, hi = lo_hi
            out.append((str(key), (number(lo, f"bounds {key}"), number(hi, f"bounds {key}"))))
        except (TypeError, ValueError):
            raise ValueError(f"bounds {key}: expected (lo, hi), got {lo_hi!r}") from None
    return out


def _options(model, peaks, background, expr, params, consts, start, bounds, fix, derive, model_file, hold,
             estimator, tol, max_iter, threads, backend, device, gpu_kernel, roi, bin) -> dict:
    return {
        "model": text(model, "model"),
        "peaks": integer(peaks, "peaks"),
        "background": text(background, "background"),
        "expr": text(expr, "expr") if expr is not None else "",
        "params": names(params, "params"),
        "consts": named_numbers(consts, "consts"),
        "start": named_numbers(start, "start"),
        "bounds": _bounds(bounds),
        "fix": named_numbers(fix, "fix"),
        "derive": named_texts(derive, "derive"),
        "model_file": os.fspath(model_file) if model_file is not None else "",
        "hold": names(hold, "hold"),
        "estimator": text(estimator, "estimator"),
        "tol": number(tol, "tol"),
        "max_iter": integer(max_iter, "max_iter"),
        "threads": integer(threads, "threads"),
        "backend": text(backend, "backend"),
        "device": integer(device, "device"),
        "gpu_kernel": text(gpu_kernel, "gpu_kernel"),
        "roi": _roi_text(roi),
        "bin": integer(bin, "bin"),
    }


def _guess_maps(guess: Any, param_names: Sequence[str], shape: Tuple[int, ...]) -> list:
    """The start maps of `guess`, one per parameter, in the model's order."""
    if guess is None or (isinstance(guess, str) and guess == "auto"):
        return []
    if isinstance(guess, FitResult):
        maps = guess.params
    elif isinstance(guess, dict):
        maps = guess
    elif isinstance(guess, (str, os.PathLike)):
        import h5py
        try:
            with h5py.File(os.fspath(guess), "r") as f:
                maps = {n: f[f"/params/{n}"][()] for n in param_names if f"/params/{n}" in f}
        except OSError as e:
            raise ValueError(f"guess {os.fspath(guess)}: cannot read ({e})") from None
    else:
        raise TypeError("guess: expected 'auto', a FitResult, {name: map} or a previous fit's file")
    missing = [n for n in param_names if n not in maps]
    if missing:
        raise ValueError(f"guess: no start map for {', '.join(missing)}")
    extra = [n for n in maps if n not in param_names]
    if extra:
        raise ValueError(f"guess: unknown parameter {', '.join(map(str, extra))} "
                         f"(this model has {', '.join(param_names)})")
    out = []
    for n in param_names:
        a = as_array(maps[n], f"guess {n}")
        if a.shape != shape:
            raise ValueError(f"guess {n}: shape {tuple(a.shape)}, the fit's is {shape}")
        out.append(a)
    return out


def fit(cube: Any = None, sweep: Any = None, *, model: str = "lorentzian", peaks: int = 2,
        background: str = "constant", expr: Optional[str] = None, params: Any = None, consts: Any = None,
        start: Any = None, bounds: Any = None, fix: Any = None, derive: Any = None,
        model_file: Optional[Union[str, os.PathLike]] = None, sig: Any = None, ref: Any = None, mask: Any = None,
        roi: Any = None, bin: int = 1, guess: Any = "auto", weights: Any = None, hold: Any = None,
        estimator: str = "lse", tol: float = 1e-6, max_iter: int = 100, threads: int = 0,
        backend: str = "auto", device: int = -1, gpu_kernel: str = "auto",
        progress: Union[bool, Callable[[int], Any]] = True) -> FitResult:
    """Fits every pixel's spectrum of a cube, as `tessera fit` does.

    Parameters
    ----------
    cube : array [n_sweep, ny, nx], any numeric type and strides (read without a copy)
    sweep : array [n_sweep] of the sweep values (finite)
    model : "lorentzian", "gaussian", "stretched_exp", "damped_cosine", or a shipped
        model file's name ("esr14n", "esr15n", "esr14n_pair", "esr15n_pair")
    peaks : 1..8 for the peak models;  background : "constant" or "linear" (adds slope)
    expr, params, consts, start : a model of your own: its value at x (e.g.
        "offset + amp*exp(-(x/t1)**beta)"... with ^ or **), its parameters in
        output order, named constants {name: value} and a start value for every
        parameter {name: value}; compiled at run time into the engine
    model_file : a model file of your own (README, "Your own model")
    derive : {name: expression of the parameters}: extra derived maps
    bounds : {name: (lo, hi)};  fix : {name: value}
    sig, ref : signal and reference frames instead of cube: fits sig/ref
    mask : [ny, nx], nonzero = skip (state 4)
    roi : "y0:y1,x0:x1" or (y0, y1, x0, x1) in input pixels, end exclusive
    bin : average bin x bin pixels before fitting
    guess : "auto" (mean spectrum, cells, then each pixel), a FitResult, {name: map}
        or a previous fit's file: per-pixel start values on the output grid
    weights : [n_sweep, ny, nx] of 1/sigma^2 (least squares, bin 1)
    hold : parameters kept at each pixel's guess value instead of fitted
    estimator : "lse" (least squares) or "mle" (Poisson likelihood)
    tol, max_iter : relative tolerance; iteration limit per pixel
    threads : 0 = the cores this process may use
    backend : "auto" (a GPU when one is visible), "cpu" or "cuda";  device : CUDA device
    gpu_kernel : "auto", "thread" or "warp" (per fit, CUDA backend)
    progress : True (a bar when the call takes over a second; tqdm when installed),
        False, or a callable given the number of spectra just finished

    Returns a FitResult. Raises ValueError (with the command's message) or
    TypeError for bad input; Ctrl-C stops the fit and raises KeyboardInterrupt.
    """
    if sig is not None:
        if cube is not None:
            raise ValueError("give the cube or sig (with ref), not both")
        if ref is None:
            raise ValueError("sig needs ref: the reference frames")
        cube = sig
    elif ref is not None and cube is None:
        raise ValueError("ref needs sig (or the cube): the signal frames")
    if cube is None:
        raise ValueError("no data: the cube [n_sweep, ny, nx] is required")
    if sweep is None:
        raise ValueError("no sweep: the sweep values [n_sweep] are required")
    data = as_array(cube, "cube", 3, "[n_sweep, ny, nx]")
    ref_a = as_array(ref, "ref", 3, "[n_sweep, ny, nx]")
    sweep_a = as_array(sweep, "sweep", 1, "[n_sweep]")
    mask_a = as_array(mask, "mask", 2, "[ny, nx]")
    weights_a = as_array(weights, "weights", 3, "[n_sweep, ny, nx]")
    opts = _options(model, peaks, background, expr, params, consts, start, bounds, fix, derive, model_file, hold,
                    estimator, tol, max_iter, threads, backend, device, gpu_kernel, roi, bin)
    out_shape = _output_shape(data.shape, opts["roi"], opts["bin"])
    starts = _guess_maps(guess, _core.model_params(opts), out_shape) if not _is_auto(guess) else []
    attrs = _attrs(opts, guess, data.shape[0])
    return _run(data, ref_a, sweep_a, mask_a, weights_a, starts, opts, progress, out_shape, attrs)


def fit_spectra(spectra: Any, sweep: Any, *, model: str = "lorentzian", peaks: int = 2,
                background: str = "constant", expr: Optional[str] = None, params: Any = None,
                consts: Any = None, start: Any = None, bounds: Any = None, fix: Any = None, derive: Any = None,
                model_file: Optional[Union[str, os.PathLike]] = None, guess: Any = "auto", weights: Any = None,
                hold: Any = None, estimator: str = "lse", tol: float = 1e-6, max_iter: int = 100,
                threads: int = 0, backend: str = "auto", device: int = -1, gpu_kernel: str = "auto",
                progress: Union[bool, Callable[[int], Any]] = True) -> FitResult:
    """Fits a batch of spectra [n_fits, n_sweep]: the result's maps are [n_fits].

    The options are fit()'s (without sig, ref, mask, roi and bin); guess maps
    and weights are [n_fits] and [n_fits, n_sweep]. The automatic start treats
    the batch as one image row.
    """
    data = as_array(spectra, "spectra", 2, "[n_fits, n_sweep]")
    sweep_a = as_array(sweep, "sweep", 1, "[n_sweep]")
    weights_a = as_array(weights, "weights", 2, "[n_fits, n_sweep]")
    if weights_a is not None and weights_a.shape != data.shape:
        raise ValueError(f"weights: shape {tuple(weights_a.shape)}, the spectra's is {tuple(data.shape)}")
    opts = _options(model, peaks, background, expr, params, consts, start, bounds, fix, derive, model_file, hold,
                    estimator, tol, max_iter, threads, backend, device, gpu_kernel, None, 1)
    n_fits = data.shape[0]
    starts = []
    if not _is_auto(guess):
        starts = [s.reshape(1, n_fits) if s.ndim == 1 else s
                  for s in _guess_maps(guess, _core.model_params(opts), (n_fits,))]
    # The batch as a cube of one row, [n_sweep, 1, n_fits]: a view, no copy.
    cube = data.T[:, None, :]
    w = weights_a.T[:, None, :] if weights_a is not None else None
    attrs = _attrs(opts, guess, data.shape[1])
    return _run(cube, None, sweep_a, None, w, starts, opts, progress, (n_fits,), attrs)


def _is_auto(guess: Any) -> bool:
    return guess is None or (isinstance(guess, str) and guess == "auto")


def _output_shape(shape: Tuple[int, ...], roi: str, bin: int) -> Tuple[int, int]:
    ny, nx = shape[1], shape[2]
    if roi:
        try:
            ys, xs = roi.split(",")
            y0, y1 = (int(v) for v in ys.split(":"))
            x0, x1 = (int(v) for v in xs.split(":"))
            ny, nx = y1 - y0, x1 - x0
        except ValueError:
            return (ny, nx)  # the library names the problem
    b = max(1, bin)
    return (max(0, ny) // b, max(0, nx) // b)


def _attrs(opts: dict, guess: Any, n_sweep: int) -> dict:
    own = bool(opts["expr"]) or bool(opts["model_file"]) or opts["model"] not in _BUILTIN
    return {
        "peaks": np.int64(0 if own or opts["model"] not in ("lorentzian", "gaussian") else opts["peaks"]),
        "background": opts["background"],
        "estimator": opts["estimator"],
        "tol": opts["tol"],
        "max_iter": np.int64(opts["max_iter"]),
        "bin": np.int64(opts["bin"]),
        "guess": "auto" if _is_auto(guess) else "maps",
    }


def _run(data, ref, sweep, mask, weights, starts, opts, progress, shape, attrs) -> FitResult:
    total = int(np.prod(shape)) if len(shape) else 0
    bar = Progress(total, "px", progress)
    try:
        raw = _core.fit_cube(data, ref, sweep, mask, weights, starts, opts, bar.hook())
    finally:
        bar.close()
    return FitResult(raw, tuple(shape), np.array(sweep, dtype=np.float64), attrs)
