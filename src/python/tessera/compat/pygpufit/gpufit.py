"""pyGpufit's API on tessera: ``import tessera.compat.pygpufit.gpufit as gf``.

A drop-in replacement for ``import pygpufit.gpufit as gf`` (Gpufit 1.2's Python
binding, and the ODMR fork's models): the same functions, arguments in the same
order, the same classes and values, the same outputs and dtypes. Each fit is run
by tessera's engine (tessera.fit_spectra) on a model written as a tessera
expression, compiled at run time (about a second the first time a model is used,
then from tessera's disk cache).

Models (parameters in Gpufit's order; x is ``user_info``'s values or the point
index 0..n_points-1)

=======================  ====  ===========================================================
ModelID                  id    value
=======================  ====  ===========================================================
GAUSS_1D                 0     a exp(-(x - x0)^2 / (2 s^2)) + b;  (a, x0, s, b)
GAUSS_2D                 1     a exp(-((u - x0)^2 + (v - y0)^2) / (2 s^2)) + b on the
                               square grid of the point index: u = index mod size,
                               v = index div size (n_points = size^2);  (a, x0, y0, s, b)
LINEAR_1D                5     offset + slope x;  (offset, slope)
STRETCHED_EXP            -1    c + amp exp(-(x / t)^p);  (c, charac_exp_t, amp, power_exp)
DAMPED_RABI              -2    c + amp exp(-x / tau) cos(omega (x - pos));
                               (c, omega, pos, amp, tau)
LORENTZ8_CONST           -3    c + sum over 8 peaks of amp g^2 / ((x - pos)^2 + g^2),
                               g = fwhm / 2;  (c, then fwhm, pos, amp of each peak)
LORENTZ8_LINEAR          -4    the same + m x;  (c, m, then fwhm, pos, amp of each peak)
=======================  ====  ===========================================================

Gpufit's other models (GAUSS_2D_ELLIPTIC, CAUCHY_2D_ELLIPTIC, the splines, ...)
are listed in ModelID; fitting them raises ValueError naming the supported ones.
A LORENTZ8 peak whose fwhm, pos and amp are all frozen (parameters_to_fit 0)
with amp 0 in every fit contributes exactly 0: it is left out of the compiled
model (an unused peak costs nothing) and its parameters are returned unchanged.

How Gpufit's semantics map
--------------------------
- Outputs: ``(parameters, states, chi_squares, number_iterations,
  execution_time)``: float32 [n_fits, n_parameters], int32 [n_fits], float32
  [n_fits], int32 [n_fits], and the seconds of the fit itself (a float; the
  checks of the input are not counted).
- States: tessera's converged (0), iteration_limit (1) and singular (2) are
  Gpufit's CONVERGED, MAX_ITERATION and SINGULAR_HESSIAN. tessera's
  nonfinite_input (NaN or infinity in a fit's data or weights, or no positive
  weight) and bad_start (the model is not finite at the initial parameters)
  become 2, SINGULAR_HESSIAN: no solution could be computed. With MLE, a start
  where the model is finite but not positive at some point becomes 3,
  NEG_CURVATURE_MLE, Gpufit's state for a negative model value; tessera rejects
  every step that would make the model non-positive, so 3 arises only from the
  start. 4 (GPU_NOT_READY) is never returned (Gpufit never sets it either). In
  states 2 and 3 the fitted parameters are NaN (never a silent number); frozen
  parameters always keep their initial values.
- chi_squares: least squares: sum w (y - f)^2 (w = 1 without weights), the same
  quantity as Gpufit's; MLE: the Poisson deviance 2 sum (f - y - y ln(f / y)),
  also Gpufit's. Weights are ignored with MLE, as in Gpufit.
- Convergence: tolerance (default 1e-4) and max_number_iterations (default 25)
  keep Gpufit's defaults and go to tessera's tol and max_iter. tessera stops when
  the relative chi-square change is below the tolerance *and* the step is small,
  with no absolute chi-square threshold, so it may take a few more iterations
  than Gpufit, whose test is |change| < tolerance max(1, chi2).
- Constraints: Gpufit's are per fit ([n_fits, 2 n_parameters]: lower, upper of
  each parameter) with a type per parameter; tessera's bounds are per call, so
  fits with the same effective bounds are fitted together, one call per distinct
  set (a batch with a different bound in every fit makes one call per fit). A
  bound that the parameter's type uses must not be NaN, and lower <= upper.
  Frozen parameters' constraints are ignored (they may be NaN).
- user_info: the x values, float32, n_points values (one x for every fit) or
  n_fits * n_points (an x row per fit; fits with the same row are fitted
  together). Without it x is the point index, as in Gpufit. GAUSS_2D ignores it.
- Input checks are Gpufit's (float32 data, weights, initial_parameters,
  constraints; int32 parameters_to_fit and constraint_types; C-contiguous data,
  weights and initial_parameters; consistent shapes) and a few more (the number
  of initial parameters of the model, finite x values, a square GAUSS_2D). Wrong
  types raise GpufitTypeError (a TypeError), wrong values or shapes
  GpufitValueError (a ValueError); both are also RuntimeErrors, which is what
  pyGpufit raises, so code that catches RuntimeError keeps working. Nothing is
  converted silently: float64 data raise, as in Gpufit.
- platform: an extra keyword, "auto" (default: a CUDA device when this build has
  one and one is visible, else the CPU), "gpu" (CUDA; RuntimeError when there is
  none) or "cpu".
- get_last_error() returns bytes, as pyGpufit's does: the message of the last
  error of this module (b"" before any).
"""

from __future__ import annotations

import time
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

import tessera

from ._models import _MODELS, ModelID, _Model, _Plan, _evaluate, _model_plan, _names_of, _supported

__all__ = ["ModelID", "EstimatorID", "ConstraintType", "Status", "FitState", "fit", "fit_constrained",
           "get_last_error", "cuda_available", "get_cuda_version", "GpufitTypeError", "GpufitValueError"]


class EstimatorID:
    """Least squares (LSE) or Poisson maximum likelihood (MLE)."""
    LSE = 0
    MLE = 1


class ConstraintType:
    """A parameter's constraint type: which of its two bounds apply."""
    FREE = 0
    LOWER = 1
    UPPER = 2
    LOWER_UPPER = 3


class Status:
    """Gpufit's call status (kept for compatibility; errors raise here)."""
    Ok = 0
    Error = 1


class FitState:
    """The fit states returned in ``states`` (Gpufit's FitState enumeration)."""
    CONVERGED = 0
    MAX_ITERATION = 1
    SINGULAR_HESSIAN = 2
    NEG_CURVATURE_MLE = 3
    GPU_NOT_READY = 4


class GpufitTypeError(TypeError, RuntimeError):
    """An argument of the wrong type (pyGpufit raises RuntimeError: this is both)."""


class GpufitValueError(ValueError, RuntimeError):
    """An argument of the wrong value or shape (pyGpufit raises RuntimeError: this is both)."""


# ---- checks --------------------------------------------------------------------------------


class _Errors:
    """The last error message of one module (gpufit's or cpufit's)."""

    def __init__(self) -> None:
        self.last = b""

    def set(self, message: str) -> None:
        self.last = message.encode("utf-8", "replace")


def _array(a: Any, name: str, dtype, ndim: Optional[int] = None, contiguous: bool = False) -> np.ndarray:
    kind = "np.float32" if dtype == np.float32 else "np.int32"
    if not isinstance(a, np.ndarray):
        raise GpufitTypeError(f"{name}: expected a numpy array of dtype {kind}, got {type(a).__name__}")
    if a.dtype != dtype:
        raise GpufitTypeError(f"type of {name} is not {kind} (got {a.dtype}; convert with .astype({kind}))")
    if ndim is not None and a.ndim != ndim:
        raise GpufitValueError(f"{name} is not {'two' if ndim == 2 else 'one'}-dimensional "
                               f"(shape {tuple(a.shape)})")
    if contiguous and not a.flags.c_contiguous:
        raise GpufitValueError(f"Memory layout of {name} array mismatch: it must be C-contiguous "
                               f"(row-major; np.ascontiguousarray({name}))")
    return a


def _integer(v: Any, name: str) -> int:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        raise GpufitTypeError(f"{name}: expected an integer, got {v!r}")
    return int(v)


def _number(v: Any, name: str) -> float:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise GpufitTypeError(f"{name}: expected a number, got {v!r}")
    return float(v)


def _backend(platform: Optional[str], default: str) -> str:
    if platform is None:
        platform = default
    if not isinstance(platform, str) or platform not in ("auto", "cpu", "gpu"):
        raise GpufitValueError(f"platform: expected 'auto', 'cpu' or 'gpu', got {platform!r}")
    if platform == "gpu":
        if not _cuda_ready():
            raise RuntimeError("platform='gpu': " + _cuda_message() + " (use platform='cpu' or 'auto')")
        return "cuda"
    return platform


# ---- the fit -------------------------------------------------------------------------------


def _x_rows(model: _Model, user_info: Any, n_fits: int, n_points: int) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """The x rows [n_rows, n_points] (float32) and each fit's row (None: one row for all)."""
    if not model.uses_x:
        size = int(round(np.sqrt(n_points)))
        if size * size != n_points:
            raise GpufitValueError(f"GAUSS_2D fits a square of size x size points: {n_points} points is not "
                                   "a square number")
        return np.arange(n_points, dtype=np.float32)[None, :], None
    if user_info is None:
        return np.arange(n_points, dtype=np.float32)[None, :], None
    if not isinstance(user_info, np.ndarray):
        raise GpufitTypeError(f"user_info: expected a numpy array of the x values (np.float32), "
                              f"got {type(user_info).__name__}")
    if user_info.dtype != np.float32:
        raise GpufitTypeError(f"user_info: the x values must be np.float32, as Gpufit reads them "
                              f"(got {user_info.dtype}; use .astype(np.float32))")
    flat = user_info.reshape(-1)
    if flat.size not in (n_points, n_fits * n_points):
        raise GpufitValueError(f"user_info: {flat.size} x values; expected n_points = {n_points} (one x for "
                               f"every fit) or n_fits * n_points = {n_fits * n_points} (one row per fit)")
    if not np.all(np.isfinite(flat)):
        raise GpufitValueError("user_info: the x values must be finite (found NaN or infinity)")
    if flat.size == n_points:
        return flat[None, :], None
    rows = flat.reshape(n_fits, n_points)
    if n_fits > 1 and bool(np.all(rows == rows[0])):
        return rows[:1], None
    unique, inverse = np.unique(rows, axis=0, return_inverse=True)
    return unique, inverse.reshape(-1)


def _bounds(plan: _Plan, constraints: Optional[np.ndarray], constraint_types: Optional[np.ndarray],
            n_fits: int) -> Tuple[Optional[np.ndarray], List[str]]:
    """Each fit's effective bounds of the bounded free parameters, [n_fits, 2 k]
    (float64; lower, upper), and those parameters' names."""
    if constraints is None or constraint_types is None:
        return None, []
    index = {name: j for j, name in enumerate(plan.model.names)}
    cols, names = [], []
    for name in plan.free:
        j = index[name]
        t = int(constraint_types[j])
        if t == ConstraintType.FREE:
            continue
        lo = constraints[:, 2 * j].astype(np.float64) if t in (ConstraintType.LOWER, ConstraintType.LOWER_UPPER) \
            else np.full(n_fits, -np.inf)
        hi = constraints[:, 2 * j + 1].astype(np.float64) if t in (ConstraintType.UPPER, ConstraintType.LOWER_UPPER) \
            else np.full(n_fits, np.inf)
        for v, which in ((lo, "lower"), (hi, "upper")):
            bad = np.flatnonzero(np.isnan(v))
            if bad.size:
                raise GpufitValueError(f"constraints: the {which} bound of parameter {j} ({name}) is NaN in fit "
                                       f"{bad[0]}, and its constraint type uses it")
        bad = np.flatnonzero(lo > hi)
        if bad.size:
            raise GpufitValueError(f"constraints: parameter {j} ({name}) has lower bound {lo[bad[0]]} > upper "
                                   f"bound {hi[bad[0]]} in fit {bad[0]}")
        cols += [lo, hi]
        names.append(name)
    if not names:
        return None, []
    return np.stack(cols, axis=1), names


def _map_states(raw: np.ndarray, mle: bool, plan: _Plan, values: Dict[str, np.ndarray], x: np.ndarray,
                ) -> np.ndarray:
    """tessera's states as Gpufit's (see the module's docstring)."""
    out = np.where(raw <= 2, raw, 2).astype(np.int32)
    if mle:
        bad = np.flatnonzero(raw == 5)
        if bad.size:
            f = _evaluate(plan, {k: v[bad] for k, v in values.items()}, x if x.shape[0] == 1 else x[bad])
            f = np.broadcast_to(f, (bad.size, x.shape[-1]))
            negative = np.all(np.isfinite(f), axis=1) & np.any(f <= 0, axis=1)
            out[bad[negative]] = FitState.NEG_CURVATURE_MLE
    return out


def _chi2_numpy(plan: _Plan, values: Dict[str, np.ndarray], x: np.ndarray, data: np.ndarray,
                weights: Optional[np.ndarray], mle: bool) -> np.ndarray:
    """Gpufit's chi-square at given parameters (the fit of a model with nothing free)."""
    f = _evaluate(plan, values, x)
    y = data.astype(np.float64)
    with np.errstate(all="ignore"):
        if mle:
            terms = np.where(y != 0, 2 * (f - y - y * np.log(f / np.where(y != 0, y, 1))), 2 * (f - y))
        else:
            terms = (y - f) ** 2 * (weights if weights is not None else 1.0)
    return np.sum(terms, axis=1).astype(np.float32)


def _run(errors: _Errors, default_platform: str, data, weights, model_id, initial_parameters, constraints,
         constraint_types, tolerance, max_number_iterations, parameters_to_fit, estimator_id, user_info,
         platform):
    try:
        return _fit(default_platform, data, weights, model_id, initial_parameters, constraints, constraint_types,
                    tolerance, max_number_iterations, parameters_to_fit, estimator_id, user_info, platform)
    except (TypeError, ValueError, RuntimeError) as e:
        errors.set(str(e))
        if isinstance(e, (GpufitTypeError, GpufitValueError)):
            raise
        if isinstance(e, ValueError):  # tessera's checks of options it was given
            raise GpufitValueError(str(e)) from e
        if isinstance(e, TypeError):
            raise GpufitTypeError(str(e)) from e
        raise


def _fit(default_platform, data, weights, model_id, initial_parameters, constraints, constraint_types, tolerance,
         max_number_iterations, parameters_to_fit, estimator_id, user_info, platform):
    # Gpufit's checks, in its order where it matters, with clearer messages.
    data = _array(data, "data", np.float32, 2, contiguous=True)
    n_fits, n_points = data.shape
    if weights is not None:
        weights = _array(weights, "weights", np.float32, contiguous=True)
        if weights.shape != data.shape:
            raise GpufitValueError(f"dimension mismatch between data {tuple(data.shape)} and weights "
                                   f"{tuple(weights.shape)}")
    initial_parameters = _array(initial_parameters, "initial_parameters", np.float32, 2, contiguous=True)
    if initial_parameters.shape[0] != n_fits:
        raise GpufitValueError(f"dimension mismatch in number of fits between data ({n_fits}) and "
                               f"initial_parameters ({initial_parameters.shape[0]})")
    model_id = _integer(model_id, "model_id")
    if model_id not in _MODELS:
        known = _names_of(ModelID).get(model_id)
        what = f"model {known} ({model_id}) is not supported here" if known else f"unknown model ID {model_id}"
        raise GpufitValueError(f"{what}; supported: {_supported()}")
    model = _MODELS[model_id]
    P = len(model.names)
    if initial_parameters.shape[1] != P:
        raise GpufitValueError(f"initial_parameters has {initial_parameters.shape[1]} columns; {model.name} has "
                               f"{P} parameters ({', '.join(model.names)})")
    if constraints is not None:
        constraints = _array(constraints, "constraints", np.float32, 2)
        if constraints.shape != (n_fits, 2 * P):
            raise GpufitValueError(f"constraints array has invalid shape {tuple(constraints.shape)}: expected "
                                   f"(n_fits, 2 * n_parameters) = ({n_fits}, {2 * P})")
    if constraint_types is not None:
        constraint_types = _array(constraint_types, "constraint_types", np.int32, 1)
        if constraint_types.shape[0] != P:
            raise GpufitValueError(f"constraint_types should have length of number of parameters ({P}), "
                                   f"got {constraint_types.shape[0]}")
        bad = [int(t) for t in constraint_types if int(t) not in _names_of(ConstraintType)]
        if bad:
            raise GpufitValueError(f"Invalid constraint type {bad[0]}, use an attribute of ConstraintType "
                                   "(FREE 0, LOWER 1, UPPER 2, LOWER_UPPER 3)")
        if constraints is None and bool(np.any(constraint_types != ConstraintType.FREE)):
            raise GpufitValueError("constraint_types other than FREE need constraints (the bounds)")
    if parameters_to_fit is not None:
        parameters_to_fit = _array(parameters_to_fit, "parameters_to_fit", np.int32, 1)
        if parameters_to_fit.shape[0] != P:
            raise GpufitValueError(f"dimension mismatch in number of parameters between initial_parameters ({P}) "
                                   f"and parameters_to_fit ({parameters_to_fit.shape[0]})")
    tol = 1e-4 if tolerance is None else _number(tolerance, "tolerance")
    if not 0 < tol < 1:
        raise GpufitValueError(f"tolerance must be in (0, 1) (a relative change of chi-square), got {tol}")
    max_iter = 25 if max_number_iterations is None else _integer(max_number_iterations, "max_number_iterations")
    if max_iter < 1:
        raise GpufitValueError(f"max_number_iterations must be at least 1, got {max_iter}")
    estimator = EstimatorID.LSE if estimator_id is None else _integer(estimator_id, "estimator_id")
    if estimator not in (EstimatorID.LSE, EstimatorID.MLE):
        raise GpufitValueError(f"Invalid estimator ID {estimator}, use an attribute of EstimatorID (LSE 0, MLE 1)")
    mle = estimator == EstimatorID.MLE
    backend = _backend(platform, default_platform)
    x_rows, x_of_fit = _x_rows(model, user_info, n_fits, n_points)

    plan = _model_plan(model_id, initial_parameters, parameters_to_fit, n_points)
    parameters = initial_parameters.copy()
    states = np.zeros(n_fits, np.int32)
    chi_squares = np.zeros(n_fits, np.float32)
    iterations = np.zeros(n_fits, np.int32)
    if n_fits == 0:
        return parameters, states, chi_squares, iterations, 0.0
    index = {name: j for j, name in enumerate(model.names)}
    values = {p: initial_parameters[:, index[p]] for p in plan.params}
    bounds, bounded = _bounds(plan, constraints, constraint_types, n_fits)
    w = None if mle else weights

    t0 = time.perf_counter()
    if not plan.free:  # nothing to fit: Gpufit returns the start and its chi-square
        for _, idx in _groups(None, x_of_fit, n_fits):
            sel = slice(None) if idx is None else idx
            x = x_rows[0] if x_of_fit is None else x_rows[x_of_fit[0 if idx is None else idx[0]]]
            sub = {k: v[sel] for k, v in values.items()}
            chi_squares[sel] = _chi2_numpy(plan, sub, x[None, :], data[sel], None if w is None else w[sel], mle)
        return parameters, states, chi_squares, iterations, time.perf_counter() - t0

    start = {p: 1.0 for p in plan.params}  # unused (every fit has its own start) but required
    for _, idx in _groups(bounds, x_of_fit, n_fits):
        whole = idx is None
        sel = slice(None) if whole else idx
        x = x_rows[0] if x_of_fit is None else x_rows[x_of_fit[0 if whole else idx[0]]]
        bound_map = {}
        if bounds is not None:
            row = bounds[0 if whole else idx[0]]
            bound_map = {name: (row[2 * k], row[2 * k + 1]) for k, name in enumerate(bounded)}
        r = tessera.fit_spectra(
            data if whole else data[idx], x, expr=plan.expr, params=plan.params, consts=plan.consts or None,
            start=start, bounds=bound_map or None, guess={p: v if whole else v[idx] for p, v in values.items()},
            hold=plan.held or None, weights=None if w is None else (w if whole else w[idx]),
            estimator="mle" if mle else "lse", tol=tol, max_iter=max_iter, threads=0, backend=backend,
            progress=False)
        for p in plan.free:
            parameters[sel, index[p]] = r.params[p]
        chi_squares[sel] = r.chi2
        iterations[sel] = r.iterations
        sub = values if whole else {k: v[idx] for k, v in values.items()}
        states[sel] = _map_states(r.state, mle, plan, sub, x[None, :])
    return parameters, states, chi_squares, iterations, time.perf_counter() - t0


def _groups(bounds: Optional[np.ndarray], x_of_fit: Optional[np.ndarray], n_fits: int):
    """(key, indices) of the fits that share their bounds and x; indices None: all fits."""
    cols = []
    if bounds is not None:
        cols.append(bounds)
    if x_of_fit is not None:
        cols.append(x_of_fit.astype(np.float64)[:, None])
    if not cols:
        yield None, None
        return
    keys = np.concatenate(cols, axis=1)
    if bool(np.all(keys == keys[0])):
        yield keys[0], None
        return
    unique, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    order = np.argsort(inverse, kind="stable")
    ends = np.cumsum(np.bincount(inverse, minlength=unique.shape[0]))
    begin = 0
    for g, end in enumerate(ends):
        yield unique[g], order[begin:end]
        begin = end


# ---- the public functions ------------------------------------------------------------------

_errors = _Errors()


def fit(data, weights, model_id, initial_parameters, tolerance=None, max_number_iterations=None,
        parameters_to_fit=None, estimator_id=None, user_info=None, *, platform=None):
    """Fits every row of data with a model, without constraints (pyGpufit's fit).

    :param data: 2D np.float32 array [number_fits, number_points], C-contiguous
    :param weights: like data (1/sigma^2 per point, least squares only) or None
    :param model_id: a ModelID attribute (see the module's docstring for the supported ones)
    :param initial_parameters: 2D np.float32 array [number_fits, number_parameters], C-contiguous
    :param tolerance: relative chi-square change that ends a fit (default 1e-4)
    :param max_number_iterations: iteration limit per fit (default 25)
    :param parameters_to_fit: 1D np.int32 array [number_parameters]: 0 keeps a parameter at
        its initial value, nonzero fits it; None fits all
    :param estimator_id: EstimatorID.LSE (default) or EstimatorID.MLE
    :param user_info: np.float32 array of the x values: number_points values, or
        number_fits * number_points (one row per fit); None: x = 0, 1, ..., number_points-1
    :param platform: (keyword, tessera's addition) "auto" (default), "gpu" or "cpu"
    :return: parameters (float32 [number_fits, number_parameters]), states (int32),
        chi_squares (float32), number_iterations (int32), execution_time (seconds)
    :raises GpufitTypeError, GpufitValueError: for bad input (TypeError / ValueError,
        and RuntimeError as in pyGpufit); RuntimeError for platform="gpu" without CUDA
    """
    return _run(_errors, "auto", data, weights, model_id, initial_parameters, None, None, tolerance,
                max_number_iterations, parameters_to_fit, estimator_id, user_info, platform)


def fit_constrained(data, weights, model_id, initial_parameters, constraints=None, constraint_types=None,
                    tolerance=None, max_number_iterations=None, parameters_to_fit=None, estimator_id=None,
                    user_info=None, *, platform=None):
    """Fits every row of data with a model within per-fit bounds (pyGpufit's fit_constrained).

    The arguments are fit()'s, and:

    :param constraints: 2D np.float32 array [number_fits, 2 * number_parameters]: for
        each parameter its lower then its upper bound, per fit; None: no bounds
    :param constraint_types: 1D np.int32 array [number_parameters] of ConstraintType
        values (FREE, LOWER, UPPER, LOWER_UPPER: which bounds apply); None: all FREE
    :return: parameters, states, chi_squares, number_iterations, execution_time (as fit())

    Fits whose effective bounds are equal are fitted in one call; frozen
    parameters' bounds are ignored (they may be NaN).
    """
    return _run(_errors, "auto", data, weights, model_id, initial_parameters, constraints, constraint_types,
                tolerance, max_number_iterations, parameters_to_fit, estimator_id, user_info, platform)


def get_last_error():
    """The message of this module's last error, as bytes (as pyGpufit's); b"" when none."""
    return _errors.last


def _cuda_ready() -> bool:
    i = tessera.info()
    return "cuda" in i.get("backends", []) and len(i.get("cuda_devices", [])) > 0


def _cuda_message() -> str:
    i = tessera.info()
    if "cuda" not in i.get("backends", []):
        return "this tessera build has no CUDA backend"
    if not i.get("cuda_devices"):
        return "no CUDA device visible" + (f" ({i['cuda_message']})" if i.get("cuda_message") else "")
    return ""


def cuda_available():
    """True when fits can run on a CUDA device (this build has CUDA and a device is
    visible); otherwise False, and get_last_error() says why."""
    if _cuda_ready():
        return True
    _errors.set(_cuda_message())
    return False


def get_cuda_version():
    """The CUDA runtime and driver versions, ((major, minor), (major, minor)), as
    pyGpufit returns them (a driver of (0, 0): none installed). RuntimeError in a
    build without CUDA."""
    i = tessera.info()
    if "cuda" not in i.get("backends", []):
        message = "this tessera build has no CUDA backend"
        _errors.set(message)
        raise RuntimeError(f"status = {Status.Error}, message = {message}")

    def decode(v: int) -> Tuple[int, int]:
        return (int(v) // 1000, int(v) % 1000 // 10)

    return decode(i.get("cuda_runtime", 0)), decode(i.get("cuda_driver", 0))
