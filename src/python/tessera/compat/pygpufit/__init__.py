"""pyGpufit and pyCpufit on tessera: ``import tessera.compat.pygpufit.gpufit as gf`` (or ``.cpufit as cf``)."""
