#include "masked.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <new>
#include <stdexcept>
#include <utility>

#include "core/zncc.hpp"
#include "core/zncc_masked.hpp"

namespace tessera::xcorr::detail {
namespace {

// Double-precision FFTW plans, one pair per size, shared by the process. The
// planner (libfftw3's own, apart from libfftw3f's) runs under the lock;
// FFTW_ESTIMATE (no timing), so every process makes the same plan and the bits
// do not depend on the rank or the run, as PlanCache's float plans.
struct DoublePlans {
  fftw_plan r2c = nullptr, c2r = nullptr;
};

DoublePlans plans_for(int py, int px) {
  static std::mutex mutex;
  static std::map<std::pair<int, int>, DoublePlans> plans;
  std::lock_guard<std::mutex> lock(mutex);
  DoublePlans& p = plans[{py, px}];
  if (!p.r2c) {
    const std::size_t nr = std::size_t(py) * px, nc = std::size_t(py) * (px / 2 + 1);
    std::unique_ptr<double[], FftwDoubleFree> r(static_cast<double*>(fftw_malloc(sizeof(double) * nr)));
    DoubleSpectrum c(static_cast<fftw_complex*>(fftw_malloc(sizeof(fftw_complex) * nc)));
    if (!r || !c) throw std::bad_alloc();
    p.r2c = fftw_plan_dft_r2c_2d(py, px, r.get(), c.get(), FFTW_ESTIMATE);
    p.c2r = fftw_plan_dft_c2r_2d(py, px, c.get(), r.get(), FFTW_ESTIMATE);
    if (!p.r2c || !p.c2r) throw std::runtime_error("xcorr: FFTW could not create a double plan");
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
  const std::size_t c1 = std::size_t(cols) + 1;
  for (int k = 0; k < 3; ++k) {
    std::vector<double>& p = prefix_[k];
    p.assign((std::size_t(rows) + 1) * c1, 0.0);
    for (int r = 0; r < rows; ++r) {
      double run = 0;
      for (int c = 0; c < cols; ++c) {
        const double v = value(k, r, c);
        run += v;
        p[(std::size_t(r) + 1) * c1 + std::size_t(c) + 1] = p[std::size_t(r) * c1 + std::size_t(c) + 1] + run;
        norm1_[k] += std::fabs(v);
        norm2_[k] += v * v;
      }
    }
    norm2_[k] = std::sqrt(norm2_[k]);
  }
}

double MaskedSide::value(int k, int r, int c) const {
  const std::size_t i = std::size_t(r) * std::size_t(cols_) + std::size_t(c);
  if (!valid_[i]) return 0.0;
  const double v = double(pix_[i]) - mean_;
  return k == 0 ? 1.0 : (k == 1 ? v : v * v);
}

const fftw_complex* MaskedSide::spectrum(int k, int py, int px, double* scratch,
                                         fftw_complex* scratch_spec) const {
  auto fill = [&](fftw_complex* out) {
    std::fill(scratch, scratch + std::size_t(py) * std::size_t(px), 0.0);
    for (int r = 0; r < rows_; ++r)
      for (int c = 0; c < cols_; ++c) {
        const int pr = flip_ ? rows_ - 1 - r : r, pc = flip_ ? cols_ - 1 - c : c;
        scratch[std::size_t(pr) * std::size_t(px) + std::size_t(pc)] = value(k, r, c);
      }
    fftw_execute_dft_r2c(plans_for(py, px).r2c, scratch, out);
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
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& [key, s] : spectra_) b += n_cplx(key[1], key[2]) * sizeof(fftw_complex);
  return b;
}

void MaskedBuffers::ensure(int y, int x) {
  if (py == y && px == x) return;
  real.reset(static_cast<double*>(fftw_malloc(sizeof(double) * std::size_t(y) * std::size_t(x))));
  if (!real) throw std::bad_alloc();
  product = alloc_spectrum(y, x);
  scratch_spec = alloc_spectrum(y, x);
  py = y;
  px = x;
}

namespace {

// One masked pair over one region: the sums of core::zncc_masked, each into a
// dense region array (or, for sit, left in the transform's output), with the
// bound on its rounding error.
class MaskedPair {
 public:
  MaskedPair(const MaskedSide& im, const MaskedSide& t, Region r, MaskedBuffers& b)
      : im_(im), t_(t), r_(r), b_(b), nx_(std::size_t(r.x1 - r.x0 + 1)) {
    const auto [py, px] = fft_size(im.rows(), im.cols(), t.rows(), t.cols(), r);
    b.ensure(py, px);
    log2n_ = std::log2(double(py) * double(px));
    for (auto& s : b.sums) s.resize(nx_ * std::size_t(r.y1 - r.y0 + 1));
  }

  // Image array i correlated with template array j for every placement, into
  // b.real (row stride px); returns the error bound. The template's spectrum j
  // is computed (when not cached) by the first call of a group with that j.
  double transform(int i, int j, bool new_template_spectrum) {
    const int py = b_.py, px = b_.px;
    if (new_template_spectrum || !tspec_)
      tspec_ = t_.spectrum(j, py, px, b_.real.get(), b_.scratch_spec.get());
    const fftw_complex* is = im_.spectrum(i, py, px, b_.real.get(), nullptr);
    const double scale = 1.0 / (double(py) * double(px));
    fftw_complex* c = b_.product.get();
    const std::size_t nc = n_cplx(py, px);
    for (std::size_t q = 0; q < nc; ++q) {
      const double re = tspec_[q][0] * is[q][0] - tspec_[q][1] * is[q][1];
      const double imv = tspec_[q][0] * is[q][1] + tspec_[q][1] * is[q][0];
      c[q][0] = re * scale;
      c[q][1] = imv * scale;
    }
    fftw_execute_dft_c2r(plans_for(py, px).c2r, c, b_.real.get());
    return core::zncc_fft_error_bound(log2n_, im_.norm1(i), im_.norm2(i), t_.norm1(j), t_.norm2(j));
  }
  // transform(), then its region into sum s (rounded to integers for the count).
  double transform_into(int s, int i, int j, bool new_template_spectrum) {
    const double e = transform(i, j, new_template_spectrum);
    double* dst = b_.sums[s].data();
    for (int y = r_.y0; y <= r_.y1; ++y) {
      const double* src = b_.real.get() + std::size_t(y) * std::size_t(b_.px) + std::size_t(r_.x0);
      double* d = dst + std::size_t(y - r_.y0) * nx_;
      if (s == 0)
        for (std::size_t x = 0; x < nx_; ++x) d[x] = std::nearbyint(src[x]);
      else
        std::copy(src, src + nx_, d);
    }
    return e;
  }
  // Template unmasked: image array k summed over each placement's window.
  double image_box(int s, int k) {
    const int H = im_.rows(), W = im_.cols(), h = t_.rows(), w = t_.cols();
    const std::size_t w1 = std::size_t(W) + 1;
    const double* P = im_.prefix(k);
    std::vector<double> d(w1);
    for (int y = r_.y0; y <= r_.y1; ++y) {
      const core::ZnccSpan sy = core::zncc_span(y, h, H);
      const double* a = P + std::size_t(sy.lo) * w1;
      const double* bb = P + (std::size_t(sy.hi) + 1) * w1;
      for (std::size_t c = 0; c < w1; ++c) d[c] = bb[c] - a[c];
      double* out = b_.sums[s].data() + std::size_t(y - r_.y0) * nx_;
      for (int x = r_.x0; x <= r_.x1; ++x) {
        const int lo = std::max(x - w + 1, 0), hi = std::min(x, W - 1);
        out[x - r_.x0] = d[std::size_t(hi) + 1] - d[std::size_t(lo)];
      }
    }
    return core::zncc_prefix_error_bound(H, W, im_.norm1(k));
  }
  // Image unmasked: template array k summed over the part of the template
  // inside the image.
  double template_rect(int s, int k) {
    const int H = im_.rows(), W = im_.cols(), h = t_.rows(), w = t_.cols();
    const std::size_t w1 = std::size_t(w) + 1;
    const double* Q = t_.prefix(k);
    std::vector<double> d(w1);
    for (int y = r_.y0; y <= r_.y1; ++y) {
      const core::ZnccSpan sy = core::zncc_span(y, h, H);
      const double* a = Q + std::size_t(sy.off) * w1;
      const double* bb = Q + std::size_t(sy.off + sy.hi - sy.lo + 1) * w1;
      for (std::size_t c = 0; c < w1; ++c) d[c] = bb[c] - a[c];
      double* out = b_.sums[s].data() + std::size_t(y - r_.y0) * nx_;
      for (int x = r_.x0; x <= r_.x1; ++x) {
        const core::ZnccSpan sx = core::zncc_span(x, w, W);
        out[x - r_.x0] = d[std::size_t(sx.off + sx.hi - sx.lo) + 1] - d[std::size_t(sx.off)];
      }
    }
    return core::zncc_prefix_error_bound(h, w, t_.norm1(k));
  }

  const double* sum(int s) const { return b_.sums[s].data(); }
  std::size_t nx() const { return nx_; }

 private:
  const MaskedSide &im_, &t_;
  Region r_;
  MaskedBuffers& b_;
  std::size_t nx_;
  double log2n_ = 0;
  const fftw_complex* tspec_ = nullptr;
};

}  // namespace

void masked_region(const MaskedSide& im, const MaskedSide& t, Region r, const Options& options,
                   MaskedBuffers& b, float* out, long long stride) {
  if (!im.masked() && !t.masked())
    throw std::logic_error("xcorr: masked_region called for a pair without masks");
  MaskedPair p(im, t, r, b);
  enum { N, SI, SI2, ST, ST2 };
  // Grouped by template array, so that an uncached template spectrum is
  // computed once per pair: b0 (n, si, si2), b2 (st2), b1 (st, then sit last,
  // which stays in b.real).
  double e_si = 0, e_si2 = 0, e_st = 0, e_st2 = 0;
  if (t.masked()) {
    if (im.masked()) p.transform_into(N, 0, 0, true);
    e_si = p.transform_into(SI, 1, 0, !im.masked());
    e_si2 = p.transform_into(SI2, 2, 0, false);
    if (!im.masked()) p.template_rect(N, 0);
  } else {
    p.image_box(N, 0);
    e_si = p.image_box(SI, 1);
    e_si2 = p.image_box(SI2, 2);
  }
  if (im.masked()) {
    e_st2 = p.transform_into(ST2, 0, 2, true);
    e_st = p.transform_into(ST, 0, 1, true);
  } else {
    e_st = p.template_rect(ST, 1);
    e_st2 = p.template_rect(ST2, 2);
  }
  p.transform(1, 1, !im.masked());  // sit, in b.real
  const double bound_i = std::max(options.eps, core::zncc_variance_bound(e_si, e_si2, im.max_abs()));
  const double bound_t = std::max(options.eps, core::zncc_variance_bound(e_st, e_st2, t.max_abs()));
  const double min_count = options.min_overlap * t.count();
  const std::size_t nx = p.nx();
  for (int y = r.y0; y <= r.y1; ++y) {
    const std::size_t o = std::size_t(y - r.y0) * nx;
    const double *n = p.sum(N) + o, *si = p.sum(SI) + o, *si2 = p.sum(SI2) + o, *st = p.sum(ST) + o,
                 *st2 = p.sum(ST2) + o;
    const double* sit = b.real.get() + std::size_t(y) * std::size_t(b.px) + std::size_t(r.x0);
    float* row = out + (long long)(y - r.y0) * stride;
    for (std::size_t x = 0; x < nx; ++x)
      row[x] = core::zncc_masked(n[x], si[x], si2[x], st[x], st2[x], sit[x], min_count, bound_i, bound_t);
  }
}

}  // namespace tessera::xcorr::detail
