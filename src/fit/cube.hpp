// From an image cube to the spectra the fit takes, and from the fit's
// parameters to the maps derived from them: the region and binning of the
// output grid, the sig/ref normalisation, the mask, and the field maps of
// Lorentzian peak pairs. Pure computation on float arrays in memory, shared by
// the library API (whole cubes) and `tessera fit` (one slab of rows at a time):
// every output pixel depends on its own input pixels only, so any split of the
// rows gives the same bits.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "model_spec.hpp"

namespace tessera::fit {

// Rows [y0, y1) and columns [x0, x1) of the input image; all zero: the whole image.
struct Roi {
  std::int64_t y0 = 0, y1 = 0, x0 = 0, x1 = 0;
  bool whole() const { return y0 == 0 && y1 == 0 && x0 == 0 && x1 == 0; }
};

// "y0:y1,x0:x1" (empty: the whole image). Throws std::invalid_argument.
Roi parse_roi(const std::string& text);
std::string roi_text(const Roi& roi);

// The input cube [n_sweep, ny_in, nx_in], the region fitted and the binned
// output grid [ny, nx]: output pixel (oy, ox) averages input rows
// y0 + oy*bin .. + bin and columns x0 + ox*bin .. + bin (a remainder of the
// region smaller than a bin is left out).
struct CubeGeometry {
  std::int64_t n_sweep = 0, ny_in = 0, nx_in = 0;
  std::int64_t y0 = 0, y1 = 0, x0 = 0, x1 = 0;
  int bin = 1;
  std::int64_t ny = 0, nx = 0;

  // The input pixels under output rows [r0, r1): rows [y0, y1), columns [x0, x1).
  Roi input_block(std::int64_t r0, std::int64_t r1) const {
    return {y0 + r0 * bin, y0 + r1 * bin, x0, x0 + nx * bin};
  }
};

// Throws std::invalid_argument (a region outside the image or empty, bin < 1
// or larger than the region).
CubeGeometry make_geometry(std::int64_t n_sweep, std::int64_t ny_in, std::int64_t nx_in,
                           const Roi& roi, int bin);

// The spectra of output rows [r0, r1) from their input block (input_block),
// [n_sweep][block rows][block columns] float, as read: pixel-major
// [pixel][n_sweep]. Each point is the mean of the bin x bin input values, or
// with `ref` the ratio of their sums sig/ref (summed in double). A spectrum whose
// input is all zero (a dead pixel) becomes NaN, hence state nonfinite_input.
std::vector<float> bin_spectra(const CubeGeometry& g, std::int64_t rows, const float* data,
                               const float* ref);
// The same into y (rows * g.nx * g.n_sweep values).
void bin_spectra_into(const CubeGeometry& g, std::int64_t rows, const float* data, const float* ref,
                      float* y);

// The mask of output rows from the input block's mask [block rows][block
// columns]: an output pixel is masked (1) when any of its input pixels is nonzero.
std::vector<std::uint8_t> bin_mask(const CubeGeometry& g, std::int64_t rows, const float* mask);

// Maps computed per pixel from the fitted parameters, written to /derived/<name>.
// For a Lorentzian model with an even number of peaks N, pair k is peaks k and
// N-1-k (counted from the outside in) and bnv{k} = (pos{N-1-k} - pos{k}) /
// (2 gamma_NV), in mT: the field along that NV axis. A model of the user's own
// has the derived quantities it declares (derive lines, --derive).
struct DerivedMaps {
  std::vector<std::string> names;
  std::string definition;  // one line for the output's attributes, empty without maps
};
DerivedMaps derived_maps(const ModelSpec& spec);
// Map k of derived_maps for n_pix pixels of parameters [pixel][n_params]; NaN
// where the fit failed (its parameters are NaN).
void derived_values(const ModelSpec& spec, int k, const float* params, std::int64_t n_pix, float* out);
// Its one-sigma uncertainty through the fit's whole covariance (FitResults::
// covariance, packed [pixel][n_params (n_params + 1) / 2]): sqrt(g^T C g), g the
// map's gradient in the parameters at the pixel's parameters. NaN where the
// fit failed.
void derived_sigma(const ModelSpec& spec, int k, const float* params, const float* covariance,
                   std::int64_t n_pix, float* out);

}  // namespace tessera::fit
