"""The models of the pyGpufit drop-in: Gpufit's model IDs, each supported
model's parameters in Gpufit's order, its tessera expression, and the plan of
a call (what is compiled, held and left out). Used by gpufit.py and cpufit.py."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np


class ModelID:
    """Gpufit's model IDs (Gpufit 1.2) and the ODMR fork's (negative)."""
    GAUSS_1D = 0
    GAUSS_2D = 1
    GAUSS_2D_ELLIPTIC = 2
    GAUSS_2D_ROTATED = 3
    CAUCHY_2D_ELLIPTIC = 4
    LINEAR_1D = 5
    FLETCHER_POWELL = 6
    BROWN_DENNIS = 7
    SPLINE_1D = 8
    SPLINE_2D = 9
    SPLINE_3D = 10
    SPLINE_3D_MULTICHANNEL = 11
    SPLINE_3D_PHASE_MULTICHANNEL = 12
    SPLINE_4D = 13
    SPLINE_5D = 14
    STRETCHED_EXP = -1
    DAMPED_RABI = -2
    LORENTZ8_CONST = -3
    LORENTZ8_LINEAR = -4



# ---- models ------------------------------------------------------------------------------

_N_PEAKS = 8


def _names_of(cls) -> Dict[int, str]:
    return {v: k for k, v in vars(cls).items() if not k.startswith("_") and isinstance(v, int)}


class _Model:
    """A supported model: Gpufit's parameter names in Gpufit's order, and how
    many leading parameters are the background (the rest are peaks of 3)."""

    def __init__(self, name: str, names: Sequence[str], uses_x: bool = True, background: int = 0):
        self.name = name
        self.names = tuple(names)
        self.uses_x = uses_x
        self.background = background

    @property
    def peaked(self) -> bool:
        return self.name.startswith("LORENTZ8")


def _peak_names() -> List[str]:
    out = []
    for k in range(_N_PEAKS):
        out += [f"fwhm{k}", f"pos{k}", f"amp{k}"]
    return out


_MODELS: Dict[int, _Model] = {
    ModelID.GAUSS_1D: _Model("GAUSS_1D", ("a", "x0", "s", "b")),
    ModelID.GAUSS_2D: _Model("GAUSS_2D", ("a", "x0", "y0", "s", "b"), uses_x=False),
    ModelID.LINEAR_1D: _Model("LINEAR_1D", ("offset", "slope")),
    ModelID.STRETCHED_EXP: _Model("STRETCHED_EXP", ("c", "charac_exp_t", "amp", "power_exp")),
    ModelID.DAMPED_RABI: _Model("DAMPED_RABI", ("c", "omega", "pos", "amp", "tau")),
    ModelID.LORENTZ8_CONST: _Model("LORENTZ8_CONST", ["c"] + _peak_names(), background=1),
    ModelID.LORENTZ8_LINEAR: _Model("LORENTZ8_LINEAR", ["c", "m"] + _peak_names(), background=2),
}


def _supported() -> str:
    return ", ".join(f"{m.name} ({i})" for i, m in sorted(_MODELS.items(), key=lambda kv: -kv[0]))


class _Plan:
    """What one call compiles and fits: the tessera expression (its parameters
    in tessera's order: an additive offset first), the parameters held at their
    initial values, the LORENTZ8 peaks left out, and the parameters fitted."""

    def __init__(self, model: _Model, expr: str, params: List[str], consts: Dict[str, float],
                 held: List[str], dropped_peaks: List[int], free: List[str]):
        self.model = model
        self.expr = expr
        self.params = params
        self.consts = consts
        self.held = held
        self.dropped_peaks = dropped_peaks
        self.free = free

    def __repr__(self) -> str:
        return (f"<_Plan {self.model.name}: {len(self.params)} parameters compiled, {len(self.free)} fitted, "
                f"held {self.held}, peaks left out {self.dropped_peaks}>")


def _lorentzian(k: int) -> str:
    g2 = f"(0.5*fwhm{k})^2"
    return f"amp{k}*{g2}/((x - pos{k})^2 + {g2})"


def _expression(model: _Model, peaks: Sequence[int], n_points: int) -> Tuple[str, List[str], Dict[str, float]]:
    """The tessera expression of a model, its parameters (tessera's order) and constants."""
    n = model.name
    if n == "GAUSS_1D":
        return "b + a*exp(-(x - x0)^2/(2*s^2))", ["b", "a", "x0", "s"], {}
    if n == "GAUSS_2D":
        size = int(round(np.sqrt(n_points)))
        row = "floor((x + 0.5)/size)"  # exact: (x + 0.5)/size is never near an integer
        return (f"b + a*exp(-((x - size*{row} - x0)^2 + ({row} - y0)^2)/(2*s^2))",
                ["b", "a", "x0", "y0", "s"], {"size": float(size)})
    if n == "LINEAR_1D":
        return "offset + slope*x", ["offset", "slope"], {}
    if n == "STRETCHED_EXP":
        return "c + amp*exp(-(x/charac_exp_t)^power_exp)", ["c", "charac_exp_t", "amp", "power_exp"], {}
    if n == "DAMPED_RABI":
        return "c + amp*exp(-x/tau)*cos(omega*(x - pos))", ["c", "omega", "pos", "amp", "tau"], {}
    background = "c + m*x" if n == "LORENTZ8_LINEAR" else "c"
    params = list(model.names[:model.background])
    terms = [background]
    for k in peaks:
        terms.append(_lorentzian(k))
        params += [f"fwhm{k}", f"pos{k}", f"amp{k}"]
    return " + ".join(terms), params, {}


def _model_plan(model_id: int, initial_parameters: np.ndarray, parameters_to_fit: Optional[np.ndarray],
                n_points: int) -> _Plan:
    """The plan of a call (internal; the tests read it to see what is compiled)."""
    model = _MODELS[model_id]
    P = len(model.names)
    fitted = np.ones(P, bool) if parameters_to_fit is None else np.asarray(parameters_to_fit) != 0
    peaks = list(range(_N_PEAKS)) if model.peaked else []
    dropped = []
    if model.peaked:
        for k in range(_N_PEAKS):
            j = model.background + 3 * k  # fwhm, pos, amp
            if not fitted[j:j + 3].any() and bool(np.all(initial_parameters[:, j + 2] == 0)):
                dropped.append(k)
        peaks = [k for k in peaks if k not in dropped]
    expr, params, consts = _expression(model, peaks, n_points)
    index = {name: j for j, name in enumerate(model.names)}
    held = [p for p in params if not fitted[index[p]]]
    free = [p for p in params if fitted[index[p]]]
    return _Plan(model, expr, params, consts, held, dropped, free)


def _evaluate(plan: _Plan, values: Dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """The plan's model in float64 with numpy: values {name: [n]}, x [n_points] or [n, n_points]."""
    scope: Dict[str, Any] = {"exp": np.exp, "cos": np.cos, "floor": np.floor, "x": np.asarray(x, np.float64)}
    scope.update({k: np.float64(v) for k, v in plan.consts.items()})
    scope.update({k: np.asarray(v, np.float64)[:, None] for k, v in values.items()})
    with np.errstate(all="ignore"):
        return eval(plan.expr.replace("^", "**"), {"__builtins__": {}}, scope)  # our own text only
