"""tessera.compat.pygpufit: pyGpufit's and pyCpufit's API on tessera.

Every supported model recovers simulated truth; the layer's results equal
tessera.fit_spectra's bit for bit; frozen parameters, per-fit constraints, the
peaks left out of LORENTZ8, the state mapping, chi-square, and the input checks;
and the scenarios of Gpufit's own tests and Python examples."""

import numpy as np
import pytest

import tessera
import tessera.compat.pygpufit.cpufit as cf
import tessera.compat.pygpufit.gpufit as gf

F32 = np.float32


# ---- the models in numpy (Gpufit's formulas, Gpufit's parameter order) ----------------------

def gauss_1d(p, x):
    a, x0, s, b = p
    return a * np.exp(-np.square(x - x0) / (2 * s ** 2)) + b


def gauss_2d(p, size):
    a, x0, y0, s, b = p
    yi, xi = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    return (a * np.exp(-(np.square(xi - x0) + np.square(yi - y0)) / (2 * s * s)) + b).ravel()


def linear_1d(p, x):
    return p[0] + p[1] * x


def stretched_exp(p, x):
    c, t, amp, power = p
    return c + amp * np.exp(-((x / t) ** power))


def damped_rabi(p, x):
    c, omega, pos, amp, tau = p
    return c + amp * np.exp(-x / tau) * np.cos(omega * (x - pos))


def lorentz8(p, x, linear):
    c = p[0]
    m = p[1] if linear else 0.0
    v = c + m * x
    base = 2 if linear else 1
    for k in range(8):
        fwhm, pos, amp = p[base + 3 * k: base + 3 * k + 3]
        if amp == 0:
            continue  # a padding peak (fwhm 0 would make 0/0 at x == pos)
        g2 = (fwhm / 2) ** 2
        v = v + amp * g2 / ((x - pos) ** 2 + g2)
    return v


def simulate(fn, truth, x, n_fits, noise, seed):
    rng = np.random.default_rng(seed)
    clean = np.asarray(fn(np.asarray(truth, np.float64), x), np.float64)
    return (clean[None, :] + rng.normal(0, noise, (n_fits, clean.size))).astype(F32)


def starts(truth, n_fits, rel, seed):
    rng = np.random.default_rng(seed)
    t = np.asarray(truth, np.float64)
    return (t * (1 + rel * rng.uniform(-1, 1, (n_fits, t.size)))).astype(F32)


def lorentz_starts(truth, linear, n_fits, seed):
    """Starts for LORENTZ8: c at the truth, a slope at 0, fwhm and amp within 20 %,
    positions within +-2 (not relative: 1 % of 2870 MHz would be 29 MHz)."""
    rng = np.random.default_rng(seed)
    init = np.tile(np.asarray(truth, np.float64), (n_fits, 1))
    base = 2 if linear else 1
    if linear:
        init[:, 1] = 0
    for k in range(8):
        j = base + 3 * k
        init[:, j] *= 1 + 0.2 * rng.uniform(-1, 1, n_fits)
        init[:, j + 1] += np.where(truth[j + 2] != 0, rng.uniform(-2, 2, n_fits), 0)
        init[:, j + 2] *= 1 + 0.2 * rng.uniform(-1, 1, n_fits)
    return init.astype(F32)


def lorentz8_truth(linear, peaks):
    """c [, m], then (fwhm, pos, amp) of each given peak, the other peaks padded with zeros."""
    p = [1.0, 0.002] if linear else [1.0]
    for k in range(8):
        p += list(peaks[k]) if k < len(peaks) else [0.0, 0.0, 0.0]
    return np.array(p)


SWEEP = np.linspace(2800, 2940, 121).astype(F32)
PEAKS_2 = [(8.0, 2840.0, -0.03), (10.0, 2895.0, -0.025)]


# ---- every model recovers the truth ---------------------------------------------------------

@pytest.mark.parametrize("case", ["gauss_1d", "gauss_2d", "linear_1d", "stretched_exp", "damped_rabi",
                                  "lorentz8_const", "lorentz8_linear"])
def test_models_recover_truth(case):
    n = 200
    x = None
    if case == "gauss_1d":
        model, truth, x = gf.ModelID.GAUSS_1D, [4.0, 12.3, 2.5, 1.0], np.arange(25, dtype=F32)
        data, rel, tol = simulate(gauss_1d, truth, x, n, 0.05, 1), 0.15, 0.05
    elif case == "gauss_2d":
        model, truth = gf.ModelID.GAUSS_2D, [10.0, 5.5, 4.5, 2.0, 3.0]
        data, rel, tol = simulate(lambda p, _: gauss_2d(p, 11), truth, None, n, 0.1, 2), 0.1, 0.05
    elif case == "linear_1d":
        model, truth, x = gf.ModelID.LINEAR_1D, [2.0, -0.5], np.linspace(-3, 7, 30).astype(F32)
        data, rel, tol = simulate(linear_1d, truth, x, n, 0.05, 3), 0.5, 0.05
    elif case == "stretched_exp":
        model, truth, x = gf.ModelID.STRETCHED_EXP, [0.1, 40.0, 1.0, 0.8], np.linspace(0.5, 200, 80).astype(F32)
        data, rel, tol = simulate(stretched_exp, truth, x, n, 0.005, 4), 0.15, 0.05
    elif case == "damped_rabi":
        model, truth, x = gf.ModelID.DAMPED_RABI, [1.0, 0.3, 0.5, 0.2, 30.0], np.linspace(0, 60, 120).astype(F32)
        data, rel, tol = simulate(damped_rabi, truth, x, n, 0.005, 5), 0.05, 0.05
    else:
        linear = case == "lorentz8_linear"
        model = gf.ModelID.LORENTZ8_LINEAR if linear else gf.ModelID.LORENTZ8_CONST
        # all 8 peaks fitted
        peaks = [(8.0, 2806.0 + 16.5 * k, -0.02 - 0.002 * k) for k in range(8)]
        truth, x = lorentz8_truth(linear, peaks), SWEEP
        if linear:
            truth[0], truth[1] = 1.0 - 1e-4 * 2870, 1e-4  # c + m x stays near 1 over the sweep
        data = simulate(lambda p, xx: lorentz8(p, xx, linear), truth, x, n, 0.001, 6)
        rel, tol = 0.2, 0.05
    init = starts(truth, n, rel, 10)
    if case.startswith("lorentz8"):
        init = lorentz_starts(truth, case.endswith("linear"), n, 10)
        if case.endswith("linear"):
            init[:, 0] = F32(truth[0] + truth[1] * 2870)  # the level of the data, slope 0
    params, states, chi2, iters, t = gf.fit(data, None, model, init, 1e-6, 200, None, None,
                                            x if x is not None else None)
    assert params.dtype == F32 and params.shape == init.shape
    assert states.dtype == np.int32 and chi2.dtype == F32 and iters.dtype == np.int32
    assert isinstance(t, float) and t >= 0
    assert np.all(states == 0), np.bincount(states)
    med = np.median(params, axis=0)
    truth = np.asarray(truth)
    scale = np.maximum(np.abs(truth), 1e-3)
    if case == "lorentz8_linear":
        scale[:2] = [0.3, 1e-4]  # c and the slope: absolute (c = 1 - m 2870 is their difference)
    assert np.all(np.abs(med - truth) <= tol * scale), (med, truth)
    assert np.all(iters <= 200)


# ---- the layer adds nothing to tessera.fit_spectra ------------------------------------------

def test_equals_fit_spectra_bit_for_bit():
    n, x = 300, np.arange(30, dtype=F32)
    truth = [3.0, 14.2, 3.0, 0.5]
    data = simulate(gauss_1d, truth, x, n, 0.1, 20)
    init = starts(truth, n, 0.2, 21)
    ptf = np.array([1, 1, 0, 1], np.int32)  # s frozen
    w = np.random.default_rng(22).uniform(0.5, 2.0, data.shape).astype(F32)
    p, s, c, it, _ = gf.fit(data, w, gf.ModelID.GAUSS_1D, init, 1e-5, 40, ptf, None, x)
    names = ["a", "x0", "s", "b"]
    r = tessera.fit_spectra(data, x, expr="b + a*exp(-(x - x0)^2/(2*s^2))", params=["b", "a", "x0", "s"],
                            start={k: 1.0 for k in names}, guess={k: init[:, j] for j, k in enumerate(names)},
                            hold=["s"], weights=w, tol=1e-5, max_iter=40, progress=False)
    ref = np.stack([r.params[k] for k in names], axis=1)
    assert np.array_equal(p, ref)  # s: held at its start, so equal too
    assert np.array_equal(c, r.chi2)
    assert np.array_equal(it, r.iterations)
    assert np.array_equal(s, r.state) and np.all(s == 0)
    # cpufit gives the same
    p2, s2, c2, it2, _ = cf.fit(data, w, cf.ModelID.GAUSS_1D, init, 1e-5, 40, ptf, None, x)
    assert np.array_equal(p2, p) and np.array_equal(c2, c) and np.array_equal(s2, s)


def test_chi_square_is_gpufits():
    """LSE: sum w (y - f)^2; MLE: 2 sum (f - y - y ln(f / y)), at the returned parameters."""
    n, x = 100, np.arange(40, dtype=F32)
    truth = [20.0, 19.5, 4.0, 5.0]
    rng = np.random.default_rng(30)
    clean = gauss_1d(np.array(truth), x.astype(np.float64))
    init = starts(truth, n, 0.1, 31)
    w = rng.uniform(0.5, 2.0, (n, x.size)).astype(F32)
    data = (clean + rng.normal(0, 1, (n, x.size))).astype(F32)
    p, s, c, _, _ = gf.fit(data, w, gf.ModelID.GAUSS_1D, init, 1e-6, 100, None, gf.EstimatorID.LSE, x)
    assert np.all(s == 0)
    f = np.stack([gauss_1d(q.astype(np.float64), x.astype(np.float64)) for q in p])
    lse = np.sum(w * (data - f) ** 2, axis=1)
    assert np.allclose(c, lse, rtol=1e-4)
    counts = rng.poisson(clean, (n, x.size)).astype(F32)
    p, s, c, _, _ = gf.fit(counts, None, gf.ModelID.GAUSS_1D, init, 1e-6, 100, None, gf.EstimatorID.MLE, x)
    assert np.all(s == 0)
    f = np.stack([gauss_1d(q.astype(np.float64), x.astype(np.float64)) for q in p])
    y = counts.astype(np.float64)
    dev = 2 * np.sum(f - y - np.where(y > 0, y * np.log(f / np.where(y > 0, y, 1)), 0), axis=1)
    assert np.allclose(c, dev, rtol=1e-4)
    # weights are ignored with MLE, as in Gpufit
    q, _, c2, _, _ = gf.fit(counts, w, gf.ModelID.GAUSS_1D, init, 1e-6, 100, None, gf.EstimatorID.MLE, x)
    assert np.array_equal(q, p) and np.array_equal(c2, c)


# ---- frozen parameters, constraints --------------------------------------------------------

def test_frozen_parameters_keep_their_values_bitwise_with_nan_constraints():
    n, x = 150, SWEEP
    truth = lorentz8_truth(False, PEAKS_2)
    data = simulate(lambda p, xx: lorentz8(p, xx, False), truth, x, n, 0.002, 40)
    init = lorentz_starts(truth, False, n, 41)
    ptf = np.zeros(25, np.int32)
    ptf[[0, 1, 2, 3, 5, 6]] = 1  # c, peak 0; peak 1: fwhm and amp, pos frozen
    init[:, 5] = F32(2895.0) + np.random.default_rng(42).normal(0, 0.3, n).astype(F32)  # odd frozen values
    constraints = np.full((n, 50), np.nan, F32)  # NaN everywhere, except the free parameters' bounds
    types = np.full(25, gf.ConstraintType.LOWER_UPPER, np.int32)
    for j in np.flatnonzero(ptf):
        constraints[:, 2 * j], constraints[:, 2 * j + 1] = -1e9, 1e9
    p, s, _, _, _ = gf.fit_constrained(data, None, gf.ModelID.LORENTZ8_CONST, init, constraints, types,
                                       1e-6, 100, ptf, None, x)
    assert np.all(s == 0)
    frozen = ptf == 0
    assert np.array_equal(p[:, frozen].view(np.uint32), init[:, frozen].view(np.uint32))
    assert abs(np.median(p[:, 2]) - 2840.0) < 0.1 and abs(np.median(p[:, 6]) + 0.025) < 0.002


def test_per_fit_constraints_two_groups():
    n, x = 200, np.arange(30, dtype=F32)
    truth = [3.0, 14.2, 3.0, 0.5]
    data = simulate(gauss_1d, truth, x, n, 0.05, 50)
    init = starts(truth, n, 0.1, 51)
    constraints = np.zeros((n, 8), F32)
    types = np.array([gf.ConstraintType.FREE, gf.ConstraintType.LOWER_UPPER, gf.ConstraintType.UPPER,
                      gf.ConstraintType.LOWER], np.int32)
    first = np.arange(n) % 2 == 0
    constraints[:, 2], constraints[:, 3] = 0, 100  # x0 wide...
    constraints[first, 2], constraints[first, 3] = 14.5, 15.0  # ... or pinned above the truth
    constraints[:, 5] = np.where(first, 10.0, 2.5)  # s upper bound: below the truth in one group
    constraints[:, 6] = np.where(first, 0.6, -10.0)  # b lower bound: above the truth in the other
    constraints[:, 0] = np.nan  # a is FREE: its bounds are not read
    p, s, _, _, _ = gf.fit_constrained(data, None, gf.ModelID.GAUSS_1D, init, constraints, types,
                                       1e-6, 100, None, None, x)
    assert np.all(s <= 1)
    assert np.all((p[first, 1] >= 14.5) & (p[first, 1] <= 15.0))
    assert np.all(p[first, 1] == F32(14.5))  # pressed against the bound
    assert np.all(p[first, 3] >= F32(0.6))
    assert np.all(p[~first, 2] <= F32(2.5))
    assert np.all(np.abs(p[~first, 1] - 14.2) < 0.2)
    # one call per group: each group equals a fit of its own fits
    q, _, _, _, _ = gf.fit_constrained(np.ascontiguousarray(data[~first]), None, gf.ModelID.GAUSS_1D,
                                       np.ascontiguousarray(init[~first]), np.ascontiguousarray(constraints[~first]),
                                       types, 1e-6, 100, None, None, x)
    assert np.array_equal(q, p[~first])


# ---- LORENTZ8: unused peaks are left out ------------------------------------------------------

@pytest.mark.parametrize("linear", [False, True])
def test_unused_lorentz_peaks_are_left_out(linear):
    model = gf.ModelID.LORENTZ8_LINEAR if linear else gf.ModelID.LORENTZ8_CONST
    base = 2 if linear else 1
    n, x = 200, SWEEP
    truth = lorentz8_truth(linear, PEAKS_2)
    if linear:
        truth[0], truth[1] = 1.0 - 0.0001 * 2870, 0.0001
    data = simulate(lambda p, xx: lorentz8(p, xx, linear), truth, x, n, 0.002, 60)
    init = lorentz_starts(truth, linear, n, 61)
    if linear:
        init[:, 0] = 1.0
    ptf = np.zeros(base + 24, np.int32)
    ptf[:base + 6] = 1  # background and two peaks; the others are dukit-style zero padding
    plan = gf._model_plan(model, init, ptf, x.size)
    assert plan.dropped_peaks == [2, 3, 4, 5, 6, 7]
    assert len(plan.params) == base + 6 and plan.held == [] and len(plan.free) == base + 6
    p, s, c, it, _ = gf.fit(data, None, model, init, 1e-6, 100, ptf, None, x)
    assert np.all(s == 0)
    assert np.array_equal(p[:, base + 6:].view(np.uint32), init[:, base + 6:].view(np.uint32))
    # the same as an expression with only the two peaks
    bg = "c + m*x" if linear else "c"
    expr = bg + "".join(f" + amp{k}*(0.5*fwhm{k})^2/((x - pos{k})^2 + (0.5*fwhm{k})^2)" for k in range(2))
    names = (["c", "m"] if linear else ["c"]) + [f"{q}{k}" for k in range(2) for q in ("fwhm", "pos", "amp")]
    r = tessera.fit_spectra(data, x, expr=expr, params=names, start={k: 1.0 for k in names},
                            guess={k: init[:, j] for j, k in enumerate(names)}, tol=1e-6, max_iter=100,
                            progress=False)
    assert np.array_equal(p[:, :base + 6], np.stack([r.params[k] for k in names], axis=1))
    assert np.array_equal(c, r.chi2) and np.array_equal(it, r.iterations)
    # a peak stays when anything of it is fitted, or its amplitude is not 0 in every fit
    ptf2 = ptf.copy()
    ptf2[base + 3 * 7 + 1] = 1
    assert gf._model_plan(model, init, ptf2, x.size).dropped_peaks == [2, 3, 4, 5, 6]
    init2 = init.copy()
    init2[5, base + 3 * 4 + 2] = F32(-0.001)
    plan2 = gf._model_plan(model, init2, ptf, x.size)
    assert plan2.dropped_peaks == [2, 3, 5, 6, 7] and plan2.held == ["fwhm4", "pos4", "amp4"]
    # all 8 peaks free: 8 peaks compiled
    assert gf._model_plan(model, init, None, x.size).dropped_peaks == []
    assert len(gf._model_plan(model, init, None, x.size).params) == base + 24


# ---- states --------------------------------------------------------------------------------

def test_states_mapping():
    x = np.arange(20, dtype=F32)
    truth = [5.0, 9.0, 2.0, 10.0]
    data = simulate(gauss_1d, truth, x, 6, 0.1, 70)
    data[1, 3] = np.nan  # nonfinite input -> 2
    init = np.tile(np.array(truth, F32), (6, 1))
    init[2, 2] = np.nan  # bad start (NaN) -> 2
    init[3, 1] = 500.0  # the peak far outside: a and s have no effect -> singular, 2
    p, s, _, _, _ = gf.fit(data, None, gf.ModelID.GAUSS_1D, init, 1e-6, 50, None, None, x)
    assert list(s) == [0, 2, 2, 2, 0, 0]
    assert np.all(np.isnan(p[1:4]))
    _, s, _, it, _ = gf.fit(data, None, gf.ModelID.GAUSS_1D, init * F32(0.7), 1e-6, 1, None, None, x)
    assert s[0] == 1 and it[0] == 1  # iteration limit
    # MLE: a start where the model is negative -> 3 (NEG_CURVATURE_MLE)
    counts = np.random.default_rng(71).poisson(gauss_1d(np.array(truth), x), (3, 20)).astype(F32)
    init = np.tile(np.array(truth, F32), (3, 1))
    init[1, 3] = -20.0
    p, s, _, _, _ = gf.fit(counts, None, gf.ModelID.GAUSS_1D, init, 1e-6, 50, None, gf.EstimatorID.MLE, x)
    assert list(s) == [0, gf.FitState.NEG_CURVATURE_MLE, 0]
    assert np.all(np.isnan(p[1]))


# ---- Gpufit's own tests and examples ----------------------------------------------------------

@pytest.mark.parametrize("module", [gf, cf], ids=["gpufit", "cpufit"])
def test_gpufit_gaussian_fit_1d(module):
    """Gpufit/python/tests/test_gaussian_fit_1d.py: 5 exact points, tolerance 1e-3, 10 iterations."""
    true_parameters = np.array((4, 2, 0.5, 1), dtype=F32)
    x = np.arange(5, dtype=F32)
    data = gauss_1d(true_parameters, x).astype(F32)[None, :]
    initial_parameters = np.array([[2, 1.5, 0.3, 0]], dtype=F32)
    parameters, states, chi_squares, number_iterations, _ = module.fit(
        data, None, module.ModelID.GAUSS_1D, initial_parameters, 0.001, 10, None, None, None)
    assert chi_squares < 1e-6
    assert states == 0
    assert number_iterations <= 10
    assert np.all(np.abs(true_parameters - parameters[0]) < 1e-6)


@pytest.mark.parametrize("module", [gf, cf], ids=["gpufit", "cpufit"])
def test_gpufit_linear_regression(module):
    """Gpufit/python/tests/test_linear_regression.py: two points, two parameters, an exact
    fit whose chi-square goes to 0 (y = 0 at one point): converged, not singular, within
    Gpufit's 10 iterations (the engine stops at chi-square's rounding floor; before that
    floor it chased a shrinking chi-square for 11 iterations)."""
    data = np.array([[0, 1]], dtype=F32)
    initial_parameters = np.array([[0, 0]], dtype=F32)
    user_info = np.array((0, 1), dtype=F32)
    parameters, states, chi_squares, number_iterations, _ = module.fit(
        data, None, module.ModelID.LINEAR_1D, initial_parameters, 0.001, None, None, None, user_info)
    assert chi_squares < 1e-6
    assert states == 0
    assert number_iterations <= 10
    assert np.all(np.abs(np.array((0, 1), F32) - parameters[0]) < 1e-6)


def _gauss2d_example(number_fits, size_x, true_parameters, seed):
    """examples/python/gauss2d.py's input: randomised starts, Poisson counts."""
    np.random.seed(seed)
    initial_parameters = np.tile(true_parameters, (number_fits, 1))
    initial_parameters[:, (1, 2)] += true_parameters[3] * (-0.2 + 0.4 * np.random.rand(number_fits, 2))
    initial_parameters[:, (0, 3, 4)] *= 0.8 + 0.4 * np.random.rand(number_fits, 3)
    data = np.tile(gauss_2d(true_parameters, size_x)[None, :], (number_fits, 1))
    return np.random.poisson(data).astype(F32), initial_parameters


def test_gauss2d_example():
    """examples/python/gauss2d.py (2000 of its 10000 fits): MLE, 12 x 12, tolerance 1e-4, 20 iterations."""
    true_parameters = np.array((10, 5.5, 5.5, 3, 10), dtype=F32)
    data, init = _gauss2d_example(2000, 12, true_parameters, 0)
    parameters, states, chi_squares, number_iterations, t = gf.fit(
        data, None, gf.ModelID.GAUSS_2D, init, 0.0001, 20, None, gf.EstimatorID.MLE, None)
    converged = states == 0
    assert converged.mean() > 0.99
    assert np.all(np.isin(states, [0, 1, 2, 3]))
    mean = parameters[converged].mean(axis=0)
    assert np.all(np.abs(mean[1:3] - 5.5) < 0.05)  # the centre: unbiased
    assert abs(mean[3] - 3) < 0.3 and abs(mean[0] - 10) < 1.5 and abs(mean[4] - 10) < 1.5
    assert 100 < np.mean(chi_squares[converged]) < 200  # a deviance of ~n_points - 5


def test_gauss2d_constrained_example():
    """examples/python/gauss2d_constrained.py (2000 of its 20000 fits): the width pinned to
    [2.9, 3.1], amplitude and offset >= 0: the estimates tighten and respect the bounds."""
    number_parameters = 5
    true_parameters = np.array((2, 9.5, 9.5, 3, 10), dtype=F32)
    data, init = _gauss2d_example(2000, 20, true_parameters, 0)
    p0, s0, _, _, _ = gf.fit(data, None, gf.ModelID.GAUSS_2D, init, 0.0001, 20, None, gf.EstimatorID.MLE, None)
    constraints = np.zeros((2000, 2 * number_parameters), dtype=F32)
    constraints[:, 6] = 2.9
    constraints[:, 7] = 3.1
    constraint_types = np.array([gf.ConstraintType.LOWER, gf.ConstraintType.FREE, gf.ConstraintType.FREE,
                                 gf.ConstraintType.LOWER_UPPER, gf.ConstraintType.LOWER], dtype=np.int32)
    p, s, _, _, _ = gf.fit_constrained(data, None, gf.ModelID.GAUSS_2D, init, constraints, constraint_types,
                                       0.0001, 20, None, gf.EstimatorID.MLE, None)
    ok = s == 0
    assert ok.mean() > 0.99
    assert np.all((p[ok, 3] >= F32(2.9)) & (p[ok, 3] <= F32(3.1)))
    assert np.all(p[ok, 0] >= 0) and np.all(p[ok, 4] >= 0)
    assert np.std(p[ok, 3]) < 0.1
    assert np.std(p[ok, 0]) < np.std(p0[s0 == 0, 0]) / 2  # the amplitude: much tighter
    # (the MLE of a = 2 on b = 10 over 400 points has a mean of ~2.3: scipy finds the same optima)
    assert abs(np.mean(p[ok, 0]) - 2) < 0.5 and abs(np.mean(p[ok, 4]) - 10) < 0.1


def test_per_fit_x_rows():
    """user_info with n_fits * n_points values: each fit its own x (Gpufit's per-fit user info)."""
    n = 40
    rng = np.random.default_rng(80)
    x = np.where(np.arange(n)[:, None] % 2 == 0, np.linspace(0, 10, 16), np.linspace(-5, 20, 16)).astype(F32)
    data = (1.5 + 0.25 * x + rng.normal(0, 0.01, x.shape)).astype(F32)
    init = np.zeros((n, 2), F32)
    p, s, _, _, _ = gf.fit(data, None, gf.ModelID.LINEAR_1D, init, 1e-6, 50, None, None, x.ravel())
    assert np.all(s == 0)
    assert np.all(np.abs(p - [1.5, 0.25]) < [0.05, 0.01])
    q, _, _, _, _ = gf.fit(np.ascontiguousarray(data[1::2]), None, gf.ModelID.LINEAR_1D, init[1::2].copy(),
                           1e-6, 50, None, None, x[1])
    assert np.array_equal(q, p[1::2])


def test_nothing_to_fit_returns_the_start_and_its_chi_square():
    x = np.arange(10, dtype=F32)
    data = (2 + 0.5 * x)[None, :].astype(F32) + F32(0.5)
    init = np.array([[2, 0.5]], F32)
    p, s, c, it, _ = gf.fit(data, None, gf.ModelID.LINEAR_1D, init, None, None, np.zeros(2, np.int32), None, x)
    assert np.array_equal(p, init) and s[0] == 0 and it[0] == 0
    assert np.isclose(c[0], 10 * 0.25)


# ---- platform, CUDA queries, errors ------------------------------------------------------------

def test_platform_and_cuda_queries():
    x = np.arange(5, dtype=F32)
    data = np.array([[0, 1, 2, 3, 4]], F32)
    init = np.zeros((1, 2), F32)
    cuda = "cuda" in tessera.info()["backends"] and len(tessera.info()["cuda_devices"]) > 0
    assert gf.cuda_available() == cuda
    for platform in ("cpu", "auto"):
        p, s, _, _, _ = gf.fit(data, None, gf.ModelID.LINEAR_1D, init, None, None, None, None, x, platform=platform)
        assert s[0] == 0 and abs(p[0, 1] - 1) < 1e-5
    with pytest.raises(ValueError, match="platform"):
        gf.fit(data, None, gf.ModelID.LINEAR_1D, init, platform="tpu")
    if not cuda:
        assert gf.get_last_error()  # cuda_available() said why
        assert isinstance(gf.get_last_error(), bytes)
        with pytest.raises(RuntimeError, match="platform='gpu'"):
            gf.fit(data, None, gf.ModelID.LINEAR_1D, init, platform="gpu")
        if "cuda" not in tessera.info()["backends"]:
            with pytest.raises(RuntimeError, match="no CUDA backend"):
                gf.get_cuda_version()
    else:
        (rt, drv) = gf.get_cuda_version()
        assert len(rt) == 2 and len(drv) == 2 and rt[0] >= 10
        p, s, _, _, _ = gf.fit(data, None, gf.ModelID.LINEAR_1D, init, None, None, None, None, x, platform="gpu")
        assert s[0] == 0


def _good():
    x = np.arange(8, dtype=F32)
    return np.tile(2 + 0.5 * x, (3, 1)).astype(F32), np.zeros((3, 2), F32), x


@pytest.mark.parametrize("change, error, match", [
    (lambda a: a.update(data=a["data"].astype(np.float64)), TypeError, "data is not np.float32"),
    (lambda a: a.update(data=a["data"].tolist()), TypeError, "numpy array"),
    (lambda a: a.update(data=a["data"][0]), ValueError, "two-dimensional"),
    (lambda a: a.update(data=np.asfortranarray(a["data"])), ValueError, "C-contiguous"),
    (lambda a: a.update(weights=np.ones((3, 7), F32)), ValueError, "weights"),
    (lambda a: a.update(weights=np.ones((3, 8))), TypeError, "weights is not np.float32"),
    (lambda a: a.update(initial_parameters=np.zeros((3, 3), F32)), ValueError, "LINEAR_1D has 2 parameters"),
    (lambda a: a.update(initial_parameters=np.zeros((2, 2), F32)), ValueError, "number of fits"),
    (lambda a: a.update(initial_parameters=np.zeros((3, 2))), TypeError, "initial_parameters is not np.float32"),
    (lambda a: a.update(model_id=99), ValueError, "unknown model ID 99; supported: .*LINEAR_1D \\(5\\)"),
    (lambda a: a.update(model_id=gf.ModelID.GAUSS_2D_ELLIPTIC), ValueError, "GAUSS_2D_ELLIPTIC .* not supported"),
    (lambda a: a.update(model_id=5.0), TypeError, "model_id"),
    (lambda a: a.update(user_info=np.array([0, 1, 2, np.nan, 4, 5, 6, 7], F32)), ValueError, "finite"),
    (lambda a: a.update(user_info=np.arange(8, dtype=np.float64)), TypeError, "np.float32"),
    (lambda a: a.update(user_info=np.arange(7, dtype=F32)), ValueError, "x values"),
    (lambda a: a.update(parameters_to_fit=np.ones(2, np.int64)), TypeError, "parameters_to_fit is not np.int32"),
    (lambda a: a.update(parameters_to_fit=np.ones(3, np.int32)), ValueError, "parameters_to_fit"),
    (lambda a: a.update(estimator_id=2), ValueError, "estimator"),
    (lambda a: a.update(tolerance=0.0), ValueError, "tolerance must be in \\(0, 1\\)"),
    (lambda a: a.update(tolerance="1e-4"), TypeError, "tolerance"),
    (lambda a: a.update(max_number_iterations=0), ValueError, "max_number_iterations must be at least 1"),
    (lambda a: a.update(max_number_iterations=2.5), TypeError, "max_number_iterations"),
    (lambda a: a.update(constraints=np.zeros((3, 3), F32)), ValueError, "constraints array has invalid shape"),
    (lambda a: a.update(constraints=np.zeros((3, 4)), constraint_types=np.ones(2, np.int32)), TypeError,
     "constraints is not np.float32"),
    (lambda a: a.update(constraints=np.zeros((3, 4), F32), constraint_types=np.array([0, 7], np.int32)),
     ValueError, "Invalid constraint type 7"),
    (lambda a: a.update(constraints=np.zeros((3, 4), F32), constraint_types=np.ones(3, np.int32)),
     ValueError, "constraint_types should have length"),
    (lambda a: a.update(constraints=np.full((3, 4), np.nan, F32), constraint_types=np.array([1, 0], np.int32)),
     ValueError, "lower bound of parameter 0 .* NaN"),
    (lambda a: a.update(constraints=np.array([[2, 1, 0, 0]] * 3, F32), constraint_types=np.array([3, 0], np.int32)),
     ValueError, "lower bound 2.0 > upper bound 1.0"),
])
def test_bad_input(change, error, match):
    data, init, x = _good()
    args = dict(data=data, weights=None, model_id=gf.ModelID.LINEAR_1D, initial_parameters=init, constraints=None,
                constraint_types=None, tolerance=None, max_number_iterations=None, parameters_to_fit=None,
                estimator_id=None, user_info=x)
    change(args)
    with pytest.raises(error, match=match) as e:
        gf.fit_constrained(**args)
    assert isinstance(e.value, RuntimeError)  # what pyGpufit raises, for code that catches it
    assert gf.get_last_error() == str(e.value).encode()
    assert cf.get_last_error() != gf.get_last_error()  # each module its own, as two libraries


def test_gauss2d_needs_a_square():
    with pytest.raises(ValueError, match="square"):
        gf.fit(np.zeros((2, 15), F32), None, gf.ModelID.GAUSS_2D, np.ones((2, 5), F32))


def test_ids_are_gpufits():
    assert (gf.ModelID.GAUSS_1D, gf.ModelID.GAUSS_2D, gf.ModelID.LINEAR_1D) == (0, 1, 5)
    assert (gf.ModelID.STRETCHED_EXP, gf.ModelID.DAMPED_RABI) == (-1, -2)
    assert (gf.ModelID.LORENTZ8_CONST, gf.ModelID.LORENTZ8_LINEAR) == (-3, -4)
    assert (gf.EstimatorID.LSE, gf.EstimatorID.MLE) == (0, 1)
    assert (gf.ConstraintType.FREE, gf.ConstraintType.LOWER, gf.ConstraintType.UPPER,
            gf.ConstraintType.LOWER_UPPER) == (0, 1, 2, 3)
    assert cf.ModelID is gf.ModelID and not hasattr(cf, "cuda_available")
