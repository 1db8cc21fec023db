// NVRTC has no C library headers: <limits.h> from libcu++ (see cstdint here).
#pragma once
#include <cuda/std/climits>
