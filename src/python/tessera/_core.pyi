"""Type stub of the compiled binding (src/python/module.cpp); use tessera's functions."""
from typing import Any, Callable, Optional

import numpy as np

version: str
state_names: list[str]

def fit_cube(data: np.ndarray, ref: Optional[np.ndarray], sweep: np.ndarray, mask: Optional[np.ndarray],
             weights: Optional[np.ndarray], start: list[np.ndarray], options: dict[str, Any],
             progress: Optional[Callable[[int], Any]]) -> dict[str, Any]: ...
def xcorr(images: np.ndarray, templates: np.ndarray, pairs: np.ndarray, options: dict[str, Any],
          progress: Optional[Callable[[int], Any]]) -> dict[str, Any]: ...
def model_params(options: dict[str, Any]) -> list[str]: ...
def info() -> dict[str, Any]: ...
