// Coarse-to-fine starts, for the models of the user's own (which have no
// search of their own) and for the built-in peak models (whose per-pixel
// search then runs only where needed), where a line may move several
// linewidths across the image and a hyperfine pattern one spacing off fits
// nearly as well as the right one:
//
//   1. the mean spectrum of the whole image is fitted from the user's starts
//      (spectrum_start, as for every model);
//   2. the image is cut into square cells (cell_grid: at most 16 a side) whose
//      mean spectra are fitted in rings from the centre cell outward, each cell
//      from the whole image's fit and from every neighbour cell already fitted,
//      keeping the lowest chi-square (fit_cells): the cell fits follow a line
//      across the image one cell at a time;
//   3. each pixel is fitted from the cells' parameters interpolated
//      bilinearly between the cell centres (extrapolated from the outer two
//      in the half cell at the border; its own cell's where one of the four
//      was not fitted): a line that moves a hyperfine spacing within a cell
//      still starts in the right minimum;
//   4. a pixel whose fit is clearly worse than its neighbours' in the row (a
//      chi-square 4.5 standard deviations of a chi-square of n - P degrees of
//      freedom above the median of c-2 .. c+2, or a failed fit beside
//      converged ones, unless its spectrum is flat) is refitted from the
//      results of c-1 and c+1, its own cell's parameters and the model's own
//      search when it has one (the built-in peak models: cube_starts; a
//      failed fit then gets the search alone), else the cells beside its own,
//      and the best fit kept (rescue_worse_than_neighbours).
//
// Rank independence. Steps 1 and 2 depend only on the per-row band sums of ALL
// rows (band_sums, gathered in row order, added in row order), so every rank
// computes the same cell fits; steps 3 and 4 look only at the pixel's own row.
// Rows are never split between ranks or chunks, so the fits are the same bits
// for any number of ranks, threads and chunks. Neighbours above and below are
// not used for that reason: the cells carry the vertical structure.
//
// Cost: a few fits per cell (a few hundred at most) and a few refits of the
// pixels found worse than their neighbours (0.1 % on the simulated cubes);
// the gathered sums are ny x (cells a row) x n_sweep doubles (52 MB for a
// 2048 x 2048 image of 200 points).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "batch.hpp"
#include "model_spec.hpp"

namespace tessera::fit {

// Cells of rows x cols pixels over an ny x nx image (the last row and column
// of cells may be smaller); a single cell covers the whole image.
struct CellGrid {
  std::int64_t ny = 0, nx = 0;
  std::int64_t rows = 1, cols = 1;  // pixels a cell
  int ky = 1, kx = 1;               // cells down and across

  int cell_row(std::int64_t row) const { return int(row / rows); }
  int cell_col(std::int64_t col) const { return int(col / cols); }
  bool single() const { return ky == 1 && kx == 1; }
};

// The whole image as one cell (the built-in models' starts need only its mean).
CellGrid single_cell(std::int64_t ny, std::int64_t nx);
// Square cells of side max(8, ceil(max(ny, nx) / 16)).
CellGrid cell_grid(std::int64_t ny, std::int64_t nx);

// Per-row sums of the finite spectra over the grid's column bands:
// sum [rows][kx][n_points] (pixels added in column order), count [rows][kx].
// With one band it is spectrum_row_sums.
void band_sums(const float* y, std::int64_t rows, const CellGrid& g, int n_points, double* sum,
               std::int64_t* count);

// From the band sums of ALL ny rows: the whole image's mean spectrum (each
// row's bands added in band order, then the rows in row order: with one band,
// mean_from_row_sums) and each cell's mean spectrum [ky * kx][n_points] (rows
// added in row order; NaN for a cell without a finite pixel).
std::vector<float> image_mean(std::span<const double> sum, std::span<const std::int64_t> count,
                              const CellGrid& g, int n_points);
std::vector<float> cell_means(std::span<const double> sum, std::span<const std::int64_t> count,
                              const CellGrid& g, int n_points);

// The fitted cells: params [ky * kx][n_params] (the global start where a cell
// has no data or no fit converged: ok false).
struct CellFits {
  CellGrid grid;
  int n_params = 0;
  std::vector<double> params;
  std::vector<std::uint8_t> ok;

  const double* at(int i, int j) const { return params.data() + (std::size_t(i) * kx() + j) * n_params; }
  bool fitted(int i, int j) const { return ok[std::size_t(i) * kx() + j] != 0; }
  int kx() const { return grid.kx; }
};

// Step 2 above. global: the whole image's fit; fixed: one value per parameter
// (read where options.constraints marks it fixed). Least squares whatever the
// estimator (a cell's mean is not Poisson); deterministic for any thread count.
CellFits fit_cells(const ModelSpec& spec, std::span<const float> x, std::span<const float> means,
                   const CellGrid& grid, std::span<const double> global, const FitOptions& options,
                   std::span<const double> fixed);

// Per-pixel starts of whole rows [row0, row0 + rows) of the grid's image
// (step 3 above), [pixel][n_params], inside options' bounds.
std::vector<float> starts_from_cells(const CellFits& cells, std::int64_t row0, std::int64_t rows,
                                     const FitOptions& options);

// A model's own search for starts: n_pix spectra [pixel][n_points] in, their
// starts [pixel][n_params] out (for the built-in models, cube_starts).
using StartSearch = std::function<std::vector<float>(const float* y, std::int64_t n_pix)>;

// Step 4 above, on whole rows [row0, row0 + rows): batch holds their spectra
// (pixel-major) as first fitted, res their results, updated in place. `fit`
// fits a batch with the options of the first fit (the caller's backend);
// `search`, when given, adds the model's own search to a bad pixel's
// candidates. Returns the number of pixels refitted.
std::int64_t rescue_worse_than_neighbours(const CellFits& cells, std::int64_t row0, std::int64_t rows,
                                          const FitBatch& batch,
                                          const std::function<FitResults(const FitBatch&)>& fit,
                                          FitResults& res, const StartSearch& search = {});

}  // namespace tessera::fit
