#include "xcorr.hpp"

#include <fftw3.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <string>

#include "core/zncc.hpp"

namespace tessera::xcorr {
namespace {

// FFTW's planner is not thread-safe; execution of distinct plans is.
std::mutex& planner_mutex() {
  static std::mutex m;
  return m;
}

struct FftwFree {
  void operator()(void* p) const { fftwf_free(p); }
};
using RealBuf = std::unique_ptr<float[], FftwFree>;
using CplxBuf = std::unique_ptr<fftwf_complex[], FftwFree>;

RealBuf alloc_real(std::size_t n) {
  auto* p = static_cast<float*>(fftwf_malloc(sizeof(float) * n));
  if (!p) throw std::bad_alloc();
  return RealBuf(p);
}
CplxBuf alloc_cplx(std::size_t n) {
  auto* p = static_cast<fftwf_complex*>(fftwf_malloc(sizeof(fftwf_complex) * n));
  if (!p) throw std::bad_alloc();
  return CplxBuf(p);
}

void check_view(View v, const char* what) {
  if (v.height <= 0 || v.width <= 0 || !v.data)
    throw std::invalid_argument(std::string("xcorr: ") + what + " is empty (" +
                                std::to_string(v.height) + "x" + std::to_string(v.width) + ")");
  const std::size_t n = std::size_t(v.height) * std::size_t(v.width);
  for (std::size_t i = 0; i < n; ++i)
    if (!std::isfinite(v.data[i]))
      throw std::invalid_argument(std::string("xcorr: ") + what + " has a non-finite value (" +
                                  std::to_string(v.data[i]) + ") at (" +
                                  std::to_string(i / std::size_t(v.width)) + ", " +
                                  std::to_string(i % std::size_t(v.width)) + ")");
}

// Inclusive-exclusive 2-D prefix table: P[(y+1)*(W+1) + x+1] = sum over [0..y]x[0..x].
template <class T> struct Prefix {
  int w1 = 0;
  std::vector<T> p;
  template <class F> void build(int H, int W, F value) {
    w1 = W + 1;
    p.assign(std::size_t(H + 1) * std::size_t(w1), T(0));
    for (int y = 0; y < H; ++y) {
      T row = 0;
      for (int x = 0; x < W; ++x) {
        row += value(y, x);
        p[std::size_t(y + 1) * w1 + x + 1] = p[std::size_t(y) * w1 + x + 1] + row;
      }
    }
  }
  // Sum over rows [r0, r1] and columns [c0, c1] (inclusive; empty gives 0).
  T sum(int r0, int r1, int c0, int c1) const {
    if (r0 > r1 || c0 > c1) return T(0);
    const std::size_t a = std::size_t(r0) * w1, b = std::size_t(r1 + 1) * w1;
    return p[b + c1 + 1] - p[a + c1 + 1] - p[b + c0] + p[a + c0];
  }
};

}  // namespace

struct Correlator::Plan {
  int py, px;
  RealBuf real;
  CplxBuf cplx;
  fftwf_plan r2c = nullptr, c2r = nullptr;
  Plan(int py_, int px_) : py(py_), px(px_) {
    const std::size_t nr = std::size_t(py) * px, nc = std::size_t(py) * (px / 2 + 1);
    real = alloc_real(nr);
    cplx = alloc_cplx(nc);
    std::lock_guard<std::mutex> lock(planner_mutex());
    r2c = fftwf_plan_dft_r2c_2d(py, px, real.get(), cplx.get(), FFTW_ESTIMATE);
    c2r = fftwf_plan_dft_c2r_2d(py, px, cplx.get(), real.get(), FFTW_ESTIMATE);
    if (!r2c || !c2r) throw std::runtime_error("xcorr: FFTW could not create a plan");
  }
  ~Plan() {
    std::lock_guard<std::mutex> lock(planner_mutex());
    if (r2c) fftwf_destroy_plan(r2c);
    if (c2r) fftwf_destroy_plan(c2r);
  }
  std::size_t ncplx() const { return std::size_t(py) * (px / 2 + 1); }
};

struct Correlator::ImageData {
  int H = 0, W = 0;
  std::vector<float> pix;  // after normalize_input
  double centre = 0;       // mean of pix, subtracted before the transform
  Prefix<double> s1, s2;
  Prefix<std::int32_t> nonzero, diff_h, diff_v;  // exact flatness counts
  std::map<std::pair<int, int>, CplxBuf> spectra;
};

Correlator::Correlator(Options options) : options_(options) {
  if (!(options_.eps >= 0) || !std::isfinite(options_.eps))
    throw std::invalid_argument("xcorr: eps must be finite and >= 0");
  if (options_.crop_y < 0 || options_.crop_x < 0)
    throw std::invalid_argument("xcorr: crop must be >= 0");
}

Correlator::~Correlator() = default;

void Correlator::set_image(View image) {
  check_view(image, "image");
  auto d = std::make_unique<ImageData>();
  d->H = image.height;
  d->W = image.width;
  const std::size_t n = std::size_t(d->H) * d->W;
  d->pix.assign(image.data, image.data + n);
  auto mean_of = [&](const std::vector<float>& v) {
    double s = 0;
    for (float f : v) s += f;
    return s / double(v.size());
  };
  if (options_.normalize_input) {
    const double m = mean_of(d->pix);
    for (float& f : d->pix) f = float(double(f) - m);
  }
  d->centre = mean_of(d->pix);
  const int W = d->W;
  const float* p = d->pix.data();
  auto at = [p, W](int y, int x) { return p[std::size_t(y) * W + x]; };
  d->s1.build(d->H, W, [&](int y, int x) { return double(at(y, x)); });
  d->s2.build(d->H, W, [&](int y, int x) { return double(at(y, x)) * double(at(y, x)); });
  d->nonzero.build(d->H, W, [&](int y, int x) { return std::int32_t(at(y, x) != 0.0f); });
  d->diff_h.build(d->H, W,
                  [&](int y, int x) { return std::int32_t(x > 0 && at(y, x) != at(y, x - 1)); });
  d->diff_v.build(d->H, W,
                  [&](int y, int x) { return std::int32_t(y > 0 && at(y, x) != at(y - 1, x)); });
  image_ = std::move(d);
}

Correlator::Plan& Correlator::plan_for(int py, int px) {
  auto& slot = plans_[{py, px}];
  if (!slot) slot = std::make_unique<Plan>(py, px);
  return *slot;
}

void Correlator::correlate(View templ) {
  if (!image_) throw std::logic_error("xcorr: set_image must be called before correlating");
  check_view(templ, "template");
  ImageData& im = *image_;
  const int H = im.H, W = im.W, h = templ.height, w = templ.width;
  if (h > H || w > W)
    throw std::invalid_argument("xcorr: template " + std::to_string(h) + "x" + std::to_string(w) +
                                " is larger than the image " + std::to_string(H) + "x" +
                                std::to_string(W) + " (as normxcorr2, h <= H and w <= W)");
  const int mh = H + h - 1, mw = W + w - 1;
  const int py = fast_fft_size(mh), px = fast_fft_size(mw, true);
  Plan& plan = plan_for(py, px);
  const std::size_t nr = std::size_t(py) * px, nc = plan.ncplx();

  // Image spectrum at this size, once per image and size.
  auto& spec = im.spectra[{py, px}];
  if (!spec) {
    spec = alloc_cplx(nc);
    float* r = plan.real.get();
    std::fill(r, r + nr, 0.0f);
    for (int y = 0; y < H; ++y)
      for (int x = 0; x < W; ++x)
        r[std::size_t(y) * px + x] = float(double(im.pix[std::size_t(y) * W + x]) - im.centre);
    fftwf_execute_dft_r2c(plan.r2c, r, spec.get());
  }

  // Template statistics in double, centred template (flipped) into the buffer.
  const std::size_t nt = std::size_t(h) * w;
  double tsum = 0;
  for (std::size_t i = 0; i < nt; ++i) tsum += templ.data[i];
  const double tbar = tsum / double(nt);
  double ssd_t = 0;
  for (std::size_t i = 0; i < nt; ++i) {
    const double d = double(templ.data[i]) - tbar;
    ssd_t += d * d;
  }
  Prefix<double> tc;  // prefix sums of the centred template (padding correction)
  tc.build(h, w, [&](int y, int x) { return double(templ.data[std::size_t(y) * w + x]) - tbar; });
  float* r = plan.real.get();
  std::fill(r, r + nr, 0.0f);
  for (int i = 0; i < h; ++i)
    for (int j = 0; j < w; ++j)
      r[std::size_t(h - 1 - i) * px + (w - 1 - j)] =
          float(double(templ.data[std::size_t(i) * w + j]) - tbar);
  fftwf_execute_dft_r2c(plan.r2c, r, plan.cplx.get());
  const float scale = 1.0f / float(nr);
  fftwf_complex* c = plan.cplx.get();
  const fftwf_complex* s = spec.get();
  for (std::size_t k = 0; k < nc; ++k) {
    const float re = c[k][0] * s[k][0] - c[k][1] * s[k][1];
    const float imv = c[k][0] * s[k][1] + c[k][1] * s[k][0];
    c[k][0] = re * scale;
    c[k][1] = imv * scale;
  }
  fftwf_execute_dft_c2r(plan.c2r, c, r);  // r[y*px + x] = sum (pix - centre) * (t - tbar)

  // Normalisation, placement by placement.
  map_.assign(std::size_t(mh) * mw, 0.0f);
  const double area = double(nt);
  for (int y = 0; y < mh; ++y) {
    const core::ZnccSpan sy = core::zncc_span(y, h, H);
    const bool full_y = sy.hi - sy.lo + 1 == h;
    for (int x = 0; x < mw; ++x) {
      const core::ZnccSpan sx = core::zncc_span(x, w, W);
      const bool inside = full_y && sx.hi - sx.lo + 1 == w;
      bool flat;
      if (inside)
        flat = im.diff_h.sum(sy.lo, sy.hi, sx.lo + 1, sx.hi) == 0 &&
               im.diff_v.sum(sy.lo + 1, sy.hi, sx.lo, sx.hi) == 0;
      else
        flat = im.nonzero.sum(sy.lo, sy.hi, sx.lo, sx.hi) == 0;
      if (flat) continue;  // every pixel under the window equal: variance 0, R = 0
      const double w1 = im.s1.sum(sy.lo, sy.hi, sx.lo, sx.hi);
      const double w2 = im.s2.sum(sy.lo, sy.hi, sx.lo, sx.hi);
      // sum over the in-image part of (pix - centre)*tc, plus centre * sum of tc there.
      double num = double(r[std::size_t(y) * px + x]);
      if (!inside)
        num += im.centre * tc.sum(sy.off, sy.off + sy.hi - sy.lo, sx.off, sx.off + sx.hi - sx.lo);
      const double R = core::zncc_from_centred(num, core::zncc_window_ssd(w1, w2, area), ssd_t,
                                               options_.eps);
      map_[std::size_t(y) * mw + x] = float(R);
    }
  }
}

std::vector<float> Correlator::map(View templ) {
  correlate(templ);
  return map_;
}

Peak Correlator::peak(View templ) {
  correlate(templ);
  const int H = image_->H, W = image_->W, h = templ.height, w = templ.width;
  const int mh = H + h - 1, mw = W + w - 1;
  int y0 = options_.crop_y, y1 = mh - 1 - options_.crop_y;
  int x0 = options_.crop_x, x1 = mw - 1 - options_.crop_x;
  if (options_.mode == Mode::valid) {
    y0 = std::max(y0, h - 1), y1 = std::min(y1, H - 1);
    x0 = std::max(x0, w - 1), x1 = std::min(x1, W - 1);
  }
  if (y0 > y1 || x0 > x1)
    throw std::invalid_argument("xcorr: crop " + std::to_string(options_.crop_y) + "," +
                                std::to_string(options_.crop_x) + " leaves no placement of the " +
                                std::to_string(mh) + "x" + std::to_string(mw) + " map to search");
  Peak best{y0, x0, map_[std::size_t(y0) * mw + x0]};
  for (int y = y0; y <= y1; ++y)
    for (int x = x0; x <= x1; ++x) {
      const float v = map_[std::size_t(y) * mw + x];
      if (v > best.value) best = {y, x, v};
    }
  return best;
}

std::vector<float> xcorr_map(View image, View templ, const Options& options) {
  Correlator c(options);
  c.set_image(image);
  return c.map(templ);
}

Peak xcorr_peak(View image, View templ, const Options& options) {
  Correlator c(options);
  c.set_image(image);
  return c.peak(templ);
}

int fast_fft_size(int n, bool even_only) {
  if (n < 1) n = 1;
  for (int m = n;; ++m) {
    if (even_only && (m & 1)) continue;
    int r = m;
    for (int f : {2, 3, 5, 7})
      while (r % f == 0) r /= f;
    if (r == 1) return m;
  }
}

}  // namespace tessera::xcorr
