"""tessera: pixel-wise fitting and batch cross-correlation for widefield microscopy.

The library of the `tessera` command, on numpy arrays in your session::

    import numpy as np, tessera
    r = tessera.fit(cube, sweep, model="lorentzian", peaks=8)   # cube: [n_sweep, ny, nx]
    r.params["pos0"], r.sigma["pos0"], r.chi2, r.state, r.derived["bnv0"]
    r.to_hdf5("fit.h5")                                         # the file `tessera fit` writes
    q = tessera.xcorr(images, templates, pairs)                 # [n, H, W], [k, h, w], [p, 2]
    q.coords, q.peaks, q.quality, q.subpixel
    tessera.info()

Results equal the command's bit for bit for the same input and options.
Drop-in replacements for pyGpufit and rcc-xcorr are in `tessera.compat`.
"""

from __future__ import annotations

import os as _os

# An installed package (pip) carries the headers that models of your own are
# compiled against and the shipped model files; a build tree finds its own.
_here = _os.path.dirname(_os.path.abspath(__file__))
if _os.path.isdir(_os.path.join(_here, "include")):
    _os.environ.setdefault("TESSERA_INCLUDE", _os.path.join(_here, "include"))
if _os.path.isdir(_os.path.join(_here, "models")):
    _models = _os.environ.get("TESSERA_MODELS", "")
    _os.environ["TESSERA_MODELS"] = _os.path.join(_here, "models") + (":" + _models if _models else "")

from . import _core  # noqa: E402
from ._fit import FitResult, fit, fit_spectra  # noqa: E402
from ._xcorr import XcorrResult, xcorr  # noqa: E402

__version__ = _core.version
STATE_NAMES = tuple(_core.state_names)


def info() -> dict:
    """What this build can use here: version, backends, SIMD level, CPU threads, CUDA devices.

    Returns a dict: ``version``, ``backends`` (["cpu"] or ["cpu", "cuda"]),
    ``simd_compiled`` (the widest instruction set the build uses), ``simd_cpu``
    (this CPU's), ``cpu_threads`` (the cores this process may use),
    ``cuda_devices`` (a list of dicts: index, name, compute_capability,
    memory_bytes, multiprocessors), ``cuda_message`` (why there are none) and,
    in a build with CUDA, ``cuda_runtime``, ``cuda_driver``, ``cuda_architectures``.
    """
    return dict(_core.info())


__all__ = ["fit", "fit_spectra", "xcorr", "info", "FitResult", "XcorrResult", "STATE_NAMES", "__version__"]
