// NVRTC has no C library headers: <math.h> from libcu++ (see cstdint here).
#pragma once
#include <cuda/std/cmath>
