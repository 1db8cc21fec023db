// Layout changes between the file's order and the fitter's. Local (no MPI, no
// HDF5).
//
// The file, and InputFile::read_slab, hold a cube sweep-major:
//   slab[i * n_pixels + p]      (sweep point i, pixel p of the block, row-major)
// The fitter takes one spectrum after the other, pixel-major:
//   y[p * n_sweep + i]
#pragma once

#include <cstddef>
#include <span>

namespace tessera::io {

// out[p * n_sweep + i] = slab[i * n_pixels + p]. Both spans hold exactly
// n_sweep * n_pixels values and must not overlap; throws std::invalid_argument
// otherwise.
void to_pixel_major(std::span<const float> slab, std::size_t n_sweep, std::size_t n_pixels,
                    std::span<float> out);

// The inverse: out[i * n_pixels + p] = y[p * n_sweep + i] (for writing
// simulated spectra as a cube).
void to_sweep_major(std::span<const float> y, std::size_t n_sweep, std::size_t n_pixels,
                    std::span<float> out);

}  // namespace tessera::io
