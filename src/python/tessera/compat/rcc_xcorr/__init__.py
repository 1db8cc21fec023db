"""rcc-xcorr's API on tessera: ``from tessera.compat.rcc_xcorr.xcorr import BatchXCorr``.

A drop-in for ``from rcc_xcorr.xcorr import BatchXCorr`` (rcc-xcorr 1.0.14,
MPINB): the same class, arguments and results, computed by ``tessera.xcorr``.
The differences, each for a reason, are listed in the docstring of
``tessera.compat.rcc_xcorr.xcorr.BatchXCorr``.
"""

#: The rcc-xcorr release whose API this layer reproduces (not tessera's version).
RCC_XCORR_VERSION = "1.0.14"
