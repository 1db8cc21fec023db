"""Type stub of tessera's public API (see the docstrings of tessera.fit, tessera.xcorr)."""
import os
from typing import Any, Callable, Dict, Literal, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
from numpy.typing import ArrayLike

__version__: str
STATE_NAMES: Tuple[str, ...]

Progress = Union[bool, Callable[[int], Any]]
Backend = Literal["auto", "cpu", "cuda"]
# The options fit and fit_spectra share: NAME=VALUE items as a mapping or as the command's strings.
Names = Union[Sequence[str], str, None]
Numbers = Union[Mapping[str, float], Sequence[str], None]
Ranges = Union[Mapping[str, Tuple[float, float]], Sequence[str], None]
Derives = Union[Mapping[str, str], Sequence[str], None]
PathLike = Union[str, os.PathLike]
Guess = Union[Literal["auto"], "FitResult", Mapping[str, ArrayLike], str, os.PathLike]

class FitResult:
    model: str
    param_names: list[str]
    param_units: list[str]
    shape: Tuple[int, ...]
    params: Dict[str, np.ndarray]
    sigma: Dict[str, np.ndarray]
    derived: Dict[str, np.ndarray]
    derived_sigma: Dict[str, np.ndarray]
    derived_definition: str
    chi2: np.ndarray
    state: np.ndarray
    iterations: np.ndarray
    state_counts: Dict[str, int]
    backend: str
    x_mid: float
    sweep: np.ndarray
    def to_hdf5(self, path: PathLike, force: bool = ...) -> None: ...

class XcorrResult:
    coords: np.ndarray
    peaks: np.ndarray
    quality: np.ndarray
    subpixel: Optional[np.ndarray]
    top_coords: Optional[np.ndarray]  # [p, K, 2] with top=K
    top_peaks: Optional[np.ndarray]   # [p, K] with top=K
    def __len__(self) -> int: ...

def fit(cube: Optional[ArrayLike] = ..., sweep: Optional[ArrayLike] = ..., *,
        model: str = ..., peaks: int = ..., background: Literal["constant", "linear"] = ...,
        expr: Optional[str] = ..., params: Names = ...,
        consts: Numbers = ..., start: Numbers = ..., bounds: Ranges = ..., fix: Numbers = ...,
        derive: Derives = ..., model_file: Optional[PathLike] = ...,
        sig: Optional[ArrayLike] = ..., ref: Optional[ArrayLike] = ..., mask: Optional[ArrayLike] = ...,
        roi: Union[str, Tuple[int, int, int, int], None] = ..., bin: int = ...,
        guess: Guess = ...,
        weights: Optional[ArrayLike] = ..., hold: Names = ...,
        estimator: Literal["lse", "mle"] = ..., tol: float = ..., max_iter: int = ..., threads: int = ...,
        backend: Backend = ..., device: int = ..., gpu_kernel: Literal["auto", "thread", "warp"] = ...,
        progress: Progress = ...) -> FitResult: ...

def fit_spectra(spectra: ArrayLike, sweep: ArrayLike, *, model: str = ..., peaks: int = ...,
                background: Literal["constant", "linear"] = ..., expr: Optional[str] = ...,
                params: Names = ...,
                consts: Numbers = ..., start: Numbers = ..., bounds: Ranges = ..., fix: Numbers = ...,
                derive: Derives = ..., model_file: Optional[PathLike] = ...,
                guess: Guess = ...,
                weights: Optional[ArrayLike] = ..., hold: Names = ...,
                estimator: Literal["lse", "mle"] = ..., tol: float = ..., max_iter: int = ...,
                threads: int = ..., backend: Backend = ..., device: int = ...,
                gpu_kernel: Literal["auto", "thread", "warp"] = ..., progress: Progress = ...) -> FitResult: ...

def xcorr(images: Union[ArrayLike, Sequence[ArrayLike]], templates: Union[ArrayLike, Sequence[ArrayLike]],
          pairs: ArrayLike, *, mode: Literal["full", "valid"] = ..., crop: Union[int, Tuple[int, int]] = ...,
          subpixel: bool = ..., eps: float = ..., min_overlap: float = ..., normalize_input: bool = ...,
          exclusion: int = ..., top: Optional[int] = ..., min_distance: Optional[int] = ...,
          threads: int = ..., backend: Backend = ..., device: int = ...,
          image_masks: Optional[Union[ArrayLike, Sequence[ArrayLike]]] = ...,
          template_masks: Optional[Union[ArrayLike, Sequence[ArrayLike]]] = ...,
          fft_wisdom: Optional[PathLike] = ..., progress: Progress = ...) -> XcorrResult: ...

def info() -> Dict[str, Any]: ...
