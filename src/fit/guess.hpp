// Automatic start values (`--guess auto`): a start for one spectrum
// with no prior (the mean spectrum of a cube), and per-pixel starts for a cube
// that survive peaks moving by a linewidth or more across the image.
//
// Rank independence. cube_starts computes each pixel's start from that pixel's
// own spectrum and `global` only: it never looks at another pixel, so the starts
// (and hence the fits) are the same bits however the image is split into row
// blocks, chunks, ranks or threads, provided every caller passes the same
// `global`. `global` is the fit of the mean spectrum of the WHOLE image; to get
// the same bits on every rank, each rank sums its rows with spectrum_row_sums,
// the per-row sums are gathered (all ny rows, in row order), and
// mean_from_row_sums adds them in row order; spectrum_start on that mean is then
// deterministic (it runs single-threaded), so every rank may compute it, or rank
// 0 computes it and broadcasts the doubles.
//
// Method. Peak models (details in guess_peaks.hpp): the pixel's background and
// contrast from the global line shape by linear least squares; then, for each
// width of a short ladder, N + 2 features found one at a time by a matched
// filter (each subtracted before the next is sought), assigned to the global
// peaks in order of position by dynamic programming (score minus a penalty on
// the shift from the global position, at most 2.5 global widths), with the
// background and amplitudes by linear least squares; the start with the lowest
// chi-square (the scaled global start included) wins.
// Decays have no per-image prior to use: stretched_exp takes T1 from the 1/e
// crossing refined on a grid (beta from `global`, else 1); damped_cosine takes
// the frequency from the strongest DFT peaks and tau, amplitude and phase from a
// linear least-squares fit of offset + exp(-x/tau)(a cos + b sin) on a tau grid.
// Their cost per pixel, against the fit's, is in tools/bench/README.md.
//
// Constraints: a fixed parameter takes its value from `global` (cube_starts) or
// from `fixed_values` (spectrum_start); every start is clamped into its bounds.
// Peaks are numbered in order of position (DESIGN.md).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "batch.hpp"
#include "model_spec.hpp"

namespace tessera::fit {

// Start for a single spectrum with no prior (the mean spectrum of a cube or of a
// block): a heuristic estimate refined by one least-squares fit of that spectrum
// (fit_batch with fit's constraints, max_iter and tol, one thread, LSE whatever
// fit.estimator). Peak models try dips and peaks (the direction the data
// suggest first) and keep the refined fit with the lower chi-square. Returns the
// refined parameters when a fit converges (or reaches the iteration limit) to
// finite values, else the heuristic estimate. fixed_values: empty, or one
// value per parameter (only those marked fixed in fit.constraints are read).
// Throws std::invalid_argument for a size mismatch, fewer points than
// parameters, or non-finite x or y.
std::vector<double> spectrum_start(const ModelSpec& spec, std::span<const float> x,
                                   std::span<const float> y, const FitOptions& fit = {},
                                   std::span<const double> fixed_values = {});

// Per-pixel starts for a cube: y [n_pix][n_points], pixel-major, the image
// row-major ny x nx (n_pix = ny * nx; any number of whole rows). global: the
// parameters of the whole image's mean-spectrum fit (spectrum_start); needed by
// the peak models; used by stretched_exp (beta) and for fixed values. Empty:
// computed here from the mean of these pixels, which is then NOT independent of
// how the image is split (fine on one rank). options: constraints (fixed values
// from `global`, bounds clamp the starts) and threads (the pixels are
// independent, so the result does not depend on it). Writes start
// [n_pix][n_params]; a pixel with non-finite data gets the (clamped) global start.
void cube_starts(const ModelSpec& spec, std::span<const float> x, const float* y, int ny, int nx,
                 std::span<const double> global, const FitOptions& options, float* start);

// A start in the form the starts take: peaks in order of position with
// positive widths; a cosine's amplitude positive and its phase in [-pi, pi].
// Does nothing for models of the user's own.
void normalise_start(const ModelSpec& spec, double* p);
// Fixed parameters from `fixed` (when given), every parameter into its bounds.
void constrain_start(const FitOptions& o, std::span<const double> fixed, double* p, int P);

// Per-row sums of the finite spectra: sum [rows][n_points] (double, pixels added
// in column order) and count [rows] (pixels with an all-finite spectrum).
void spectrum_row_sums(const float* y, int rows, int nx, int n_points, double* sum,
                       std::int64_t* count);

// The mean spectrum from the row sums of ALL rows of the image, added in row
// order: the same bits whatever the split of rows among ranks. A cube with no
// finite pixel gives NaN.
std::vector<float> mean_from_row_sums(std::span<const double> sum,
                                      std::span<const std::int64_t> count, int n_points);

}  // namespace tessera::fit
