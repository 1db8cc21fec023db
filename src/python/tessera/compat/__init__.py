"""Drop-in replacements for other libraries' APIs, built on tessera (pygpufit, rcc-xcorr)."""
