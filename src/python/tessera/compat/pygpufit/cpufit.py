"""pyCpufit's API on tessera: ``import tessera.compat.pygpufit.cpufit as cf``.

A drop-in replacement for ``import pycpufit.cpufit as cf`` (Cpufit's Python
binding): fit() and fit_constrained() with Cpufit's arguments, ModelID,
EstimatorID, ConstraintType, Status and get_last_error(). Fits run on the CPU
unless ``platform="gpu"`` or ``"auto"`` is given. The models, outputs, states,
checks and errors are those of tessera.compat.pygpufit.gpufit (see its
docstring), with one difference from the real pyCpufit: its fit_constrained
accepts constraints but ignores them (they are never passed to the library);
here they are applied, as Gpufit applies them.
"""

from __future__ import annotations

from .gpufit import (ConstraintType, EstimatorID, FitState, GpufitTypeError, GpufitValueError, ModelID, Status,
                     _Errors, _run)

__all__ = ["ModelID", "EstimatorID", "ConstraintType", "Status", "FitState", "fit", "fit_constrained",
           "get_last_error", "GpufitTypeError", "GpufitValueError"]

_errors = _Errors()


def fit(data, weights, model_id, initial_parameters, tolerance=None, max_number_iterations=None,
        parameters_to_fit=None, estimator_id=None, user_info=None, *, platform="cpu"):
    """Fits every row of data with a model, without constraints (pyCpufit's fit).

    :param data: 2D np.float32 array [number_fits, number_points], C-contiguous
    :param weights: like data (1/sigma^2 per point, least squares only) or None
    :param model_id: a ModelID attribute
    :param initial_parameters: 2D np.float32 array [number_fits, number_parameters], C-contiguous
    :param tolerance: relative chi-square change that ends a fit (default 1e-4)
    :param max_number_iterations: iteration limit per fit (default 25)
    :param parameters_to_fit: 1D np.int32 array [number_parameters] (0: keep the
        initial value) or None (fit all)
    :param estimator_id: EstimatorID.LSE (default) or EstimatorID.MLE
    :param user_info: np.float32 x values (number_points, or number_fits * number_points) or None
    :param platform: (keyword, tessera's addition) "cpu" (default), "auto" or "gpu"
    :return: parameters, states, chi_squares, number_iterations, execution_time
    """
    return _run(_errors, "cpu", data, weights, model_id, initial_parameters, None, None, tolerance,
                max_number_iterations, parameters_to_fit, estimator_id, user_info, platform)


def fit_constrained(data, weights, model_id, initial_parameters, constraints=None, constraint_types=None,
                    tolerance=None, max_number_iterations=None, parameters_to_fit=None, estimator_id=None,
                    user_info=None, *, platform="cpu"):
    """fit() within per-fit bounds (pyCpufit's fit_constrained; here the bounds apply).

    :param constraints: 2D np.float32 array [number_fits, 2 * number_parameters]
        (lower, upper of each parameter) or None
    :param constraint_types: 1D np.int32 array [number_parameters] of ConstraintType values or None
    :return: parameters, states, chi_squares, number_iterations, execution_time
    """
    return _run(_errors, "cpu", data, weights, model_id, initial_parameters, constraints, constraint_types,
                tolerance, max_number_iterations, parameters_to_fit, estimator_id, user_info, platform)


def get_last_error():
    """The message of this module's last error, as bytes (as pyCpufit's); b"" when none."""
    return _errors.last
