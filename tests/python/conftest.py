"""Shared fixtures of the Python package's tests: the command to compare with,
and small simulated inputs written by `tessera simulate`."""

import os
import subprocess

import numpy as np
import pytest


def tessera_bin():
    path = os.environ.get("TESSERA_BIN")
    if not path or not os.path.exists(path):
        pytest.skip("TESSERA_BIN (the tessera command) is not set: run through ctest")
    return path


def run_tessera(*args, check=True):
    """Runs the command; returns the CompletedProcess (text output)."""
    r = subprocess.run([tessera_bin(), *map(str, args)], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError(f"tessera {' '.join(map(str, args))}: exit {r.returncode}\n{r.stderr}")
    return r


@pytest.fixture(scope="session")
def odmr_file(tmp_path_factory):
    """A 2-peak ODMR cube, 80 points, 24 x 30 (non-square: a transposition cannot pass)."""
    path = tmp_path_factory.mktemp("odmr") / "cube.h5"
    run_tessera("simulate", "odmr", "-o", path, "--size", "24x30", "--peaks", "2", "--sweep-points", "80")
    return path


@pytest.fixture(scope="session")
def tiles_file(tmp_path_factory):
    """EM tiles: 6 images 96 x 80 and their templates, matching pairs and random ones."""
    path = tmp_path_factory.mktemp("tiles") / "tiles.h5"
    run_tessera("simulate", "xcorr", "-o", path, "--size", "96x80", "--images", "6", "--pairs", "14")
    return path


def read(path, name):
    import h5py
    with h5py.File(path, "r") as f:
        return f[name][()]
