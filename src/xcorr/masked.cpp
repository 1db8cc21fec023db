#include "masked.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <new>
#include <stdexcept>
#include <tuple>
#include <utility>

#include "core/zncc.hpp"
#include "core/zncc_masked.hpp"
#include "fft_plans.hpp"

namespace tessera::xcorr::detail {
namespace {

// Double-precision FFTW plans, one pair per size, shared by the process. The
// planner (libfftw3's own, apart from libfftw3f's) runs under the lock; the
// flags of fft_plans.hpp (FFTW_ESTIMATE, or shared wisdom only), so every
// process makes the same plan and the bits do not depend on the rank or the
// run, as PlanCache's float plans.
struct DoublePlans {
  fftw_plan r2c = nullptr, c2r = nullptr;
  ForwardPlansD fwd;  // the pruned forward transform (fft_plans.hpp)
};

DoublePlans plans_for(int py, int px, bool wisdom) {
  static std::map<std::tuple<int, int, bool>, DoublePlans> plans;
  std::lock_guard<std::mutex> lock(fftw_planner_mutex());
  DoublePlans& p = plans[{py, px, wisdom}];
  if (!p.r2c) {
    const std::size_t nr = std::size_t(py) * px, nc = std::size_t(py) * (px / 2 + 1);
    std::unique_ptr<double[], FftwDoubleFree> r(static_cast<double*>(fftw_malloc(sizeof(double) * nr)));
    DoubleSpectrum c(static_cast<fftw_complex*>(fftw_malloc(sizeof(fftw_complex) * nc)));
    if (!r || !c) throw std::bad_alloc();
    const unsigned flags = fft_planner_flags(wisdom);
    p.r2c = fftw_plan_dft_r2c_2d(py, px, r.get(), c.get(), flags);
    p.c2r = fftw_plan_dft_c2r_2d(py, px, c.get(), r.get(), flags);
    p.fwd = plan_forward(py, px, r.get(), c.get(), flags);
    if (!p.r2c || !p.c2r || !p.fwd.made(py))
      throw std::runtime_error("xcorr: FFTW could not create a double plan for " + std::to_string(py) + "x" +
                               std::to_string(px) + " (not in the FFT wisdom in use?)");
  }
  return p;
}

std::size_t n_cplx(int py, int px) { return std::size_t(py) * std::size_t(px / 2 + 1); }

DoubleSpectrum alloc_spectrum(int py, int px) {
  DoubleSpectrum s(static_cast<fftw_complex*>(fftw_malloc(sizeof(fftw_complex) * n_cplx(py, px))));
  if (!s) throw std::bad_alloc();
  return s;
}

}  // namespace

MaskedSide::MaskedSide(const float* pix, const std::uint8_t* mask, int rows, int cols, bool flip, bool cache)
    : rows_(rows), cols_(cols), flip_(flip), cache_(cache) {
  const std::size_t n = std::size_t(rows) * std::size_t(cols);
  pix_.assign(pix, pix + n);
  valid_.resize(n);
  double sum = 0;
  for (std::size_t i = 0; i < n; ++i) {
    valid_[i] = !mask || mask[i] != 0;
    count_ += valid_[i];
    sum += valid_[i] ? double(pix_[i]) : 0.0;
  }
  masked_ = count_ < double(n);
  mean_ = count_ > 0 ? sum / count_ : 0.0;
  for (std::size_t i = 0; i < n; ++i)
    if (valid_[i]) max_abs_ = std::max(max_abs_, std::fabs(double(pix_[i]) - mean_));
  // The three arrays' prefix tables and norms in one pass over the pixels.
  const std::size_t c1 = std::size_t(cols) + 1;
  for (auto& p : prefix_) p.assign((std::size_t(rows) + 1) * c1, 0.0);
  double *p0 = prefix_[0].data(), *p1 = prefix_[1].data(), *p2 = prefix_[2].data();
  std::vector<double> row(static_cast<std::size_t>(cols));
  for (int r = 0; r < rows; ++r) {
    row_values(1, r, row.data());
    double run0 = 0, run1 = 0, run2 = 0;
    const std::size_t above = std::size_t(r) * c1 + 1, here = above + c1;
    const std::uint8_t* valid = valid_.data() + std::size_t(r) * std::size_t(cols);
    for (int c = 0; c < cols; ++c) {
      const double v0 = valid[c], v1 = row[std::size_t(c)], v2 = v1 * v1;
      run0 += v0;
      run1 += v1;
      run2 += v2;
      p0[here + std::size_t(c)] = p0[above + std::size_t(c)] + run0;
      p1[here + std::size_t(c)] = p1[above + std::size_t(c)] + run1;
      p2[here + std::size_t(c)] = p2[above + std::size_t(c)] + run2;
      norm1_[0] += v0;
      norm2_[0] += v0;
      norm1_[1] += std::fabs(v1);
      norm2_[1] += v2;
      norm1_[2] += v2;
      norm2_[2] += v2 * v2;
    }
  }
  for (double& n2 : norm2_) n2 = std::sqrt(n2);
}

void MaskedSide::row_values(int k, int r, double* out) const {
  const std::size_t at = std::size_t(r) * std::size_t(cols_);
  const float* p = pix_.data() + at;
  const std::uint8_t* valid = valid_.data() + at;
  const double mean = mean_;
  for (int c = 0; c < cols_; ++c) {
    const double v = valid[c] ? double(p[c]) - mean : 0.0;
    out[c] = k == 0 ? double(valid[c]) : (k == 1 ? v : v * v);
  }
}

void MaskedSide::fill_padded(int k, int py, int px, double* out, int zero_rows_to) const {
  // Row by row: the array's row (reversed for a template), zeros to the padded
  // width; then zero rows.
  for (int r = 0; r < rows_; ++r) {
    double* dst = out + std::size_t(flip_ ? rows_ - 1 - r : r) * std::size_t(px);
    row_values(k, r, dst);
    if (flip_) std::reverse(dst, dst + cols_);
    std::fill(dst + cols_, dst + px, 0.0);
  }
  const int zero_to = zero_rows_to < 0 ? py : zero_rows_to;
  std::fill(out + std::size_t(rows_) * std::size_t(px), out + std::size_t(zero_to) * std::size_t(px), 0.0);
}

const fftw_complex* MaskedSide::spectrum(int k, int py, int px, double* scratch, fftw_complex* scratch_spec,
                                         bool wisdom) const {
  auto fill = [&](fftw_complex* out) {
    // Only the rows the pruned forward transform reads (the array's rows_
    // first, flipped or not).
    fill_padded(k, py, px, scratch, forward_rows_read(py, rows_));
    const DoublePlans p = plans_for(py, px, wisdom);
    forward(p.fwd, p.r2c, py, px, rows_, scratch, out);
  };
  if (!cache_) {
    fill(scratch_spec);
    return scratch_spec;
  }
  std::lock_guard<std::mutex> lock(mutex_);
  DoubleSpectrum& slot = spectra_[{k, py, px}];
  if (!slot) {
    DoubleSpectrum s = alloc_spectrum(py, px);
    fill(s.get());
    slot = std::move(s);
  }
  return slot.get();
}

std::size_t MaskedSide::bytes() const {
  std::size_t b = pix_.size() * (sizeof(float) + 1);
  for (const auto& p : prefix_) b += p.size() * sizeof(double);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [key, s] : spectra_) b += n_cplx(key[1], key[2]) * sizeof(fftw_complex);
  }
  std::lock_guard<std::mutex> lock(windows_mutex_);
  for (const auto& [key, w] : windows_) b += (w.n.size() + w.s.size() + w.var.size()) * sizeof(double);
  return b;
}

const MaskedSide::Windows& MaskedSide::windows(int other_rows, int other_cols, Region r) const {
  std::lock_guard<std::mutex> lock(windows_mutex_);
  Windows& w = windows_[{other_rows, other_cols, r.y0, r.y1, r.x0, r.x1}];
  if (w.n.empty()) compute_windows(other_rows, other_cols, r, w);
  return w;
}

void MaskedSide::compute_windows(int other_rows, int other_cols, Region r, Windows& w) const {
  const std::size_t nx = std::size_t(r.x1 - r.x0 + 1);
  const std::size_t size = nx * std::size_t(r.y1 - r.y0 + 1);
  w.n.resize(size);
  w.s.resize(size);
  w.var.resize(size);
  for (int y = r.y0; y <= r.y1; ++y) {
    const std::size_t o = std::size_t(y - r.y0) * nx;
    window_row(other_rows, other_cols, y, r, w.n.data() + o, w.s.data() + o, w.var.data() + o);
  }
  w.e1 = window_bound(1);
  w.e2 = window_bound(2);
}

double MaskedSide::window_bound(int k) const { return core::zncc_prefix_error_bound(rows_, cols_, norm1_[k]); }

long long MaskedSide::window_row_key(int other_rows, int y) const {
  // As an image: the image rows under the window; as a template: the
  // template rows inside the image.
  const bool image = !flip_;
  const core::ZnccSpan sy = core::zncc_span(y, image ? other_rows : rows_, image ? rows_ : other_rows);
  const long long top = image ? sy.lo : sy.off;
  return top * (1LL << 31) + (sy.hi - sy.lo);
}

void MaskedSide::window_row(int other_rows, int other_cols, int y, Region r, double* n, double* s,
                            double* var) const {
  // As an image: windows of a template of other_rows x other_cols over this
  // side. As a template: this side's part inside an image of that shape.
  const bool image = !flip_;
  const int H = image ? rows_ : other_rows, W = image ? cols_ : other_cols;
  const int h = image ? other_rows : rows_, w_ = image ? other_cols : cols_;
  const std::size_t c1 = std::size_t(cols_) + 1;
  thread_local std::vector<double> d0, d1, d2;
  d0.resize(c1);
  d1.resize(c1);
  d2.resize(c1);
  const core::ZnccSpan sy = core::zncc_span(y, h, H);
  // Rows of this side's tables: the image rows under the window, or the
  // template rows inside the image.
  const std::size_t top = image ? std::size_t(sy.lo) : std::size_t(sy.off);
  const std::size_t bottom = top + std::size_t(sy.hi - sy.lo) + 1;
  for (std::size_t c = 0; c < c1; ++c) {
    d0[c] = prefix_[0][bottom * c1 + c] - prefix_[0][top * c1 + c];
    d1[c] = prefix_[1][bottom * c1 + c] - prefix_[1][top * c1 + c];
    d2[c] = prefix_[2][bottom * c1 + c] - prefix_[2][top * c1 + c];
  }
  for (int x = r.x0; x <= r.x1; ++x) {
    const core::ZnccSpan sx = core::zncc_span(x, w_, W);
    const std::size_t lo = image ? std::size_t(sx.lo) : std::size_t(sx.off);
    const std::size_t hi = lo + std::size_t(sx.hi - sx.lo) + 1;
    const std::size_t q = std::size_t(x - r.x0);
    n[q] = d0[hi] - d0[lo];
    s[q] = d1[hi] - d1[lo];
    var[q] = core::zncc_masked_variance(n[q], s[q], d2[hi] - d2[lo]);
  }
}

void MaskedBuffers::ensure(int y, int x) {
  if (py == y && px == x) return;
  for (auto& r : real) r.reset();
  product = alloc_spectrum(y, x);
  scratch_spec = alloc_spectrum(y, x);
  py = y;
  px = x;
}

double* MaskedBuffers::output(int slot) {
  auto& r = real[std::size_t(slot)];
  if (!r) {
    r.reset(static_cast<double*>(fftw_malloc(sizeof(double) * std::size_t(py) * std::size_t(px))));
    if (!r) throw std::bad_alloc();
  }
  return r.get();
}

namespace {

// Rows [r.y0, r.y1] x columns [r.x0, r.x1] of a map of doubles: row y - r.y0
// starts at base + (y - r.y0) * stride (a transform's output at the region's
// corner, or a Windows table).
struct Plane {
  const double* base;
  std::size_t stride;
  const double* row(int dy) const { return base + std::size_t(dy) * stride; }
};

// The transforms of one masked pair over one region, into the thread's
// buffers, each with the bound on its rounding error.
class MaskedPair {
 public:
  MaskedPair(const MaskedSide& im, const MaskedSide& t, Region r, MaskedBuffers& b, bool wisdom)
      : im_(im), t_(t), r_(r), b_(b), nx_(r.x1 - r.x0 + 1), ny_(r.y1 - r.y0 + 1), wisdom_(wisdom) {
    const auto [py, px] = fft_size(im.rows(), im.cols(), t.rows(), t.cols(), r);
    b.ensure(py, px);
    log2n_ = std::log2(double(py) * double(px));
  }

  // Image array i correlated with template array j for every placement, into
  // output `slot`; returns the error bound. The template's spectrum j is
  // computed (when not cached) by the first call of a group with that j.
  double transform(int i, int j, int slot, bool new_template_spectrum) {
    const int py = b_.py, px = b_.px;
    double* out = b_.output(slot);  // also the scratch of a spectrum computed now
    if (b_.correlate) return transform_elsewhere(i, j, out);
    if (new_template_spectrum || !tspec_) tspec_ = t_.spectrum(j, py, px, out, b_.scratch_spec.get(), wisdom_);
    const fftw_complex* is = im_.spectrum(i, py, px, out, nullptr, wisdom_);
    const double scale = 1.0 / (double(py) * double(px));
    fftw_complex* c = b_.product.get();
    const std::size_t nc = n_cplx(py, px);
    for (std::size_t q = 0; q < nc; ++q) {
      const double re = tspec_[q][0] * is[q][0] - tspec_[q][1] * is[q][1];
      const double imv = tspec_[q][0] * is[q][1] + tspec_[q][1] * is[q][0];
      c[q][0] = re * scale;
      c[q][1] = imv * scale;
    }
    fftw_execute_dft_c2r(plans_for(py, px, wisdom_).c2r, c, out);
    return core::zncc_fft_error_bound(log2n_, im_.norm1(i), im_.norm2(i), t_.norm1(j), t_.norm2(j));
  }
  // transform() by b.correlate: the padded arrays filled here (the image's
  // when it changes, the template's likewise), the correlation done there.
  double transform_elsewhere(int i, int j, double* out) {
    const int py = b_.py, px = b_.px;
    const std::size_t n = std::size_t(py) * std::size_t(px);
    for (auto& v : b_.padded) v.resize(n);
    if (i != padded_i_) im_.fill_padded(i, py, px, b_.padded[0].data());
    if (j != padded_j_) t_.fill_padded(j, py, px, b_.padded[1].data());
    padded_i_ = i;
    padded_j_ = j;
    b_.correlate(b_.padded[0].data(), b_.padded[1].data(), py, px, out);
    return core::zncc_fft_error_bound(log2n_, im_.norm1(i), im_.norm2(i), t_.norm1(j), t_.norm2(j));
  }

  // Output `slot` over the region.
  Plane plane(int slot) const {
    return {b_.real[std::size_t(slot)].get() + std::size_t(r_.y0) * std::size_t(b_.px) + std::size_t(r_.x0),
            std::size_t(b_.px)};
  }
  // The transformed count of output `slot`, rounded to integers (exact: its
  // error bound is far below 1/2 for any size the map's int coordinates allow).
  void round_counts(int slot) {
    const Plane p = plane(slot);
    for (int dy = 0; dy < ny_; ++dy) {
      double* row = const_cast<double*>(p.row(dy));
      for (int x = 0; x < nx_; ++x) row[x] = std::nearbyint(row[x]);
    }
  }

 private:
  const MaskedSide &im_, &t_;
  Region r_;
  MaskedBuffers& b_;
  int nx_, ny_;
  bool wisdom_;
  double log2n_ = 0;
  const fftw_complex* tspec_ = nullptr;
  int padded_i_ = -1, padded_j_ = -1;  // the arrays in b.padded (transform_elsewhere)
};

// One side's count, sum and variance term (kept window tables) or sum of
// squares (transforms: the variance term is formed in the final pass, which
// reads the planes anyway) as planes, with the bounds on the sum's and the sum
// of squares' rounding.
struct SideSums {
  Plane n, s, var_or_s2;
  double e1, e2;
};

SideSums sums_of(const MaskedSide::Windows& w, Region r) {
  const std::size_t nx = std::size_t(r.x1 - r.x0 + 1);
  return {{w.n.data(), nx}, {w.s.data(), nx}, {w.var.data(), nx}, w.e1, w.e2};
}

// Where the final pass finds row dy of a side's three sums: planes.
struct PlaneRows {
  const SideSums& sums;
  void row(int dy, const double*& n, const double*& s, const double*& q) const {
    n = sums.n.row(dy);
    s = sums.s.row(dy);
    q = sums.var_or_s2.row(dy);
  }
};

// ... or a masked template's windows over an unmasked image, computed row by
// row (MaskedSide::window_row) into one row of buffers, again only when the
// template rows inside the image change: once for all the rows where the
// template lies inside vertically. Same values as compute_windows, without a
// map's worth of them written and read for every pair.
struct TemplateWindowRows {
  const MaskedSide& t;
  int H, W;
  Region r;
  MaskedSide::Windows& row_buffers;
  long long key = -1;
  TemplateWindowRows(const MaskedSide& t_, int H_, int W_, Region r_, MaskedSide::Windows& b)
      : t(t_), H(H_), W(W_), r(r_), row_buffers(b) {
    const std::size_t nx = std::size_t(r.x1 - r.x0 + 1);
    b.n.resize(nx);
    b.s.resize(nx);
    b.var.resize(nx);
  }
  void row(int dy, const double*& n, const double*& s, const double*& q) {
    const int y = r.y0 + dy;
    if (const long long k = t.window_row_key(H, y); k != key) {
      t.window_row(H, W, y, r, row_buffers.n.data(), row_buffers.s.data(), row_buffers.var.data());
      key = k;
    }
    n = row_buffers.n.data();
    s = row_buffers.s.data();
    q = row_buffers.var.data();
  }
};

// R over the region from both sides' sums (rows from is_rows and ts_rows; the
// image's count is the pair's) and sit; ISquares / TSquares: that side's third
// row holds the sum of squares (else the variance term).
template <bool ISquares, bool TSquares, class IRows, class TRows>
void final_pass(IRows&& is_rows, TRows&& ts_rows, Plane sit, int nx, int ny, double min_count, double bound_i,
                double bound_t, float* out, long long stride) {
  for (int dy = 0; dy < ny; ++dy) {
    const double *n, *si, *qi, *tn, *st, *qt;
    is_rows.row(dy, n, si, qi);
    ts_rows.row(dy, tn, st, qt);
    const double* sr = sit.row(dy);
    float* row = out + (long long)dy * stride;
    for (int x = 0; x < nx; ++x) {
      const double vi = ISquares ? core::zncc_masked_variance(n[x], si[x], qi[x]) : qi[x];
      const double vt = TSquares ? core::zncc_masked_variance(n[x], st[x], qt[x]) : qt[x];
      row[x] = core::zncc_masked(n[x], si[x], vi, st[x], vt, sr[x], min_count, bound_i, bound_t);
    }
  }
}

}  // namespace

void masked_region(const MaskedSide& im, const MaskedSide& t, Region r, const Options& options,
                   MaskedBuffers& b, float* out, long long stride) {
  if (!im.masked() && !t.masked())
    throw std::logic_error("xcorr: masked_region called for a pair without masks");
  MaskedPair p(im, t, r, b, options.fft_from_wisdom);
  enum Slot { N, SI, SI2, ST2, ST, SIT };
  // Grouped by template array, so that an uncached template spectrum is
  // computed once per pair: b0 (n, si, si2), b2 (st2), b1 (st, then sit).
  // A side without a mask gives its sums from its window tables: the image's
  // kept, the template's computed row by row in the final pass.
  SideSums is{}, ts{};
  if (t.masked()) {
    if (im.masked()) {
      p.transform(0, 0, N, true);
      p.round_counts(N);
    }
    is.e1 = p.transform(1, 0, SI, !im.masked());
    is.e2 = p.transform(2, 0, SI2, false);
    if (!im.masked()) {
      ts.e1 = t.window_bound(1);
      ts.e2 = t.window_bound(2);
    }
    if (im.masked()) is.n = p.plane(N);  // else the template's count (TemplateWindowRows)
    is.s = p.plane(SI);
    is.var_or_s2 = p.plane(SI2);
  } else {
    is = sums_of(im.windows(t.rows(), t.cols(), r), r);
  }
  if (im.masked()) {
    ts.e2 = p.transform(0, 2, ST2, true);
    ts.e1 = p.transform(0, 1, ST, true);
    ts.n = is.n;
    ts.s = p.plane(ST);
    ts.var_or_s2 = p.plane(ST2);
  }
  p.transform(1, 1, SIT, !im.masked());
  const Plane sit = p.plane(SIT);
  const double bound_i = std::max(options.eps, core::zncc_variance_bound(is.e1, is.e2, im.max_abs()));
  const double bound_t = std::max(options.eps, core::zncc_variance_bound(ts.e1, ts.e2, t.max_abs()));
  const double min_count = options.min_overlap * t.count();
  const int nx = r.x1 - r.x0 + 1, ny = r.y1 - r.y0 + 1;
  if (t.masked() && im.masked()) {
    final_pass<true, true>(PlaneRows{is}, PlaneRows{ts}, sit, nx, ny, min_count, bound_i, bound_t, out, stride);
  } else if (t.masked()) {
    // The image unmasked: the count is the template's, from its window rows.
    TemplateWindowRows trows(t, im.rows(), im.cols(), r, b.template_row);
    struct ImageRows {
      const SideSums& sums;
      TemplateWindowRows& trows;
      void row(int dy, const double*& n, const double*& s, const double*& q) {
        const double *tn, *ts_, *tq;
        trows.row(dy, tn, ts_, tq);
        n = tn;
        s = sums.s.row(dy);
        q = sums.var_or_s2.row(dy);
      }
    } irows{is, trows};
    final_pass<true, false>(irows, trows, sit, nx, ny, min_count, bound_i, bound_t, out, stride);
  } else {
    final_pass<false, true>(PlaneRows{is}, PlaneRows{ts}, sit, nx, ny, min_count, bound_i, bound_t, out, stride);
  }
}

}  // namespace tessera::xcorr::detail
