// The one qualifier that lets a function run on the host and on a CUDA device.
// Everything under src/core that a kernel calls is marked TESSERA_HD, so the same
// code is compiled by the host compiler (and tested on the CPU) and by nvcc.
#pragma once

#if defined(__CUDACC__)
#define TESSERA_HD __host__ __device__
#else
#define TESSERA_HD
#endif

// True while nvcc compiles device code (a kernel's view of a TESSERA_HD
// function), false on the host: the one place that looks at __CUDA_ARCH__.
#if defined(__CUDA_ARCH__)
#define TESSERA_DEVICE_CODE 1
#else
#define TESSERA_DEVICE_CODE 0
#endif
