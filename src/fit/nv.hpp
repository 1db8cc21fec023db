// NV-centre constants shared by the simulator and the derived field maps.
#pragma once

namespace tessera::fit {

inline constexpr double nv_zero_field_mhz = 2870.0;    // zero-field splitting D
inline constexpr double nv_gamma_mhz_per_mt = 28.024;  // electron gyromagnetic ratio

}  // namespace tessera::fit
