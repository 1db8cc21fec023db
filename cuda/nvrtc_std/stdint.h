// NVRTC has no C library headers: <stdint.h> from libcu++ (see cstdint here).
#pragma once
#include <cuda/std/cstdint>
