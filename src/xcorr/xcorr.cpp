#include "xcorr.hpp"

#include <fftw3.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstring>
#include <exception>
#include <limits>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>

#include "core/no_init_vector.hpp"
#include "core/zncc.hpp"
#include "core/zncc_rows.hpp"
#include "core/zncc_tables.hpp"
#include "fft_plans.hpp"
#include "masked.hpp"
#include "peak_search.hpp"
#include "pixels.hpp"

namespace tessera::xcorr {
using detail::find_peak_rows;
using detail::max_of;
using detail::min_of;
using detail::check_view;
using detail::kept_mask;
using detail::pixel_sums;
using detail::PixelSums;
using detail::table_storage;
namespace {

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

using SizeKey = std::pair<int, int>;  // padded FFT size (py, px)

std::size_t n_real(SizeKey k) { return std::size_t(k.first) * std::size_t(k.second); }
std::size_t n_cplx(SizeKey k) { return std::size_t(k.first) * std::size_t(k.second / 2 + 1); }

// FFTW plans, one pair per size and planning mode, shared by every thread of
// the process and executed with the new-array functions on buffers from
// fftwf_malloc (same alignment as the planning buffers). The planner is not
// thread-safe: plans are made under fftw_planner_mutex(); executing distinct or
// the same plan concurrently is safe.
struct PlanPair {
  fftwf_plan r2c = nullptr, c2r = nullptr;
  ForwardPlansF fwd;  // the pruned forward transform (fft_plans.hpp)
  InversePlansF inv;  // the inverse for a band of rows (fft_plans.hpp)
};

class PlanCache {
 public:
  static PlanCache& instance() {
    static PlanCache c;
    return c;
  }
  PlanPair get(SizeKey k, bool wisdom) {
    std::lock_guard<std::mutex> lock(fftw_planner_mutex());
    auto it = plans_.find({k, wisdom});
    if (it != plans_.end()) return it->second;
    RealBuf r = alloc_real(n_real(k));
    CplxBuf c = alloc_cplx(n_cplx(k));
    PlanPair p;
    // FFTW_ESTIMATE (no timing), or plans from shared wisdom only
    // (fft_plans.hpp): every process makes the same plan for a size and the
    // results do not depend on the rank or the run.
    const unsigned flags = fft_planner_flags(wisdom);
    p.r2c = fftwf_plan_dft_r2c_2d(k.first, k.second, r.get(), c.get(), flags);
    p.c2r = fftwf_plan_dft_c2r_2d(k.first, k.second, c.get(), r.get(), flags);
    p.fwd = plan_forward(k.first, k.second, r.get(), c.get(), flags);
    p.inv = plan_inverse(k.first, k.second, c.get(), r.get(), flags);
    if (!p.r2c || !p.c2r || !p.fwd.made(k.first) || !p.inv.made(k.first))
      throw std::runtime_error("xcorr: FFTW could not create a plan for " + std::to_string(k.first) + "x" +
                               std::to_string(k.second) + " (not in the FFT wisdom in use?)");
    plans_[{k, wisdom}] = p;
    return p;
  }
  ~PlanCache() {
    for (auto& [k, p] : plans_) {
      fftwf_destroy_plan(p.r2c);
      fftwf_destroy_plan(p.c2r);
      destroy_forward(p.fwd);
      destroy_inverse(p.inv);
    }
  }

 private:
  std::map<std::pair<SizeKey, bool>, PlanPair> plans_;
};

// The spectrum of a rows x cols array at the top left of the padded size k,
// zeros elsewhere (an image's, or a flipped template's), into out through the
// pruned forward transform: row(y, dst) writes padded row y's first cols
// values. Only the rows the transform reads are zeroed (forward_rows_read).
template <class Row>
void padded_spectrum(SizeKey k, int rows, int cols, Row row, float* scratch, fftwf_complex* out, bool wisdom) {
  for (int y = 0; y < rows; ++y) {
    float* dst = scratch + std::size_t(y) * k.second;
    row(y, dst);
    std::fill(dst + cols, dst + k.second, 0.0f);
  }
  std::fill(scratch + std::size_t(rows) * k.second,
            scratch + std::size_t(forward_rows_read(k.first, rows)) * k.second, 0.0f);
  const PlanPair p = PlanCache::instance().get(k, wisdom);
  forward(p.fwd, p.r2c, k.first, k.second, rows, scratch, out);
}

// Spectra computed once per padded FFT size, under a lock (several threads may
// ask for the same one; the first computes it, the others wait).
class SpectrumCache {
 public:
  template <class Fill> const fftwf_complex* get(SizeKey k, Fill fill) const {
    std::lock_guard<std::mutex> lock(mutex_);
    CplxBuf& slot = spectra_[k];
    if (!slot) {
      CplxBuf spec = alloc_cplx(n_cplx(k));
      fill(spec.get());
      slot = std::move(spec);
    }
    return slot.get();
  }
  std::size_t bytes() const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::size_t b = 0;
    for (const auto& [k, s] : spectra_) b += n_cplx(k) * sizeof(fftwf_complex);
    return b;
  }

 private:
  mutable std::mutex mutex_;
  mutable std::map<SizeKey, CplxBuf> spectra_;
};

}  // namespace

// ---------------------------------------------------------------------------
struct Workspace::Buffers {
  SizeKey size{0, 0};
  RealBuf real;     // transform scratch, then the map rows (R in place)
  CplxBuf cplx;     // product of the spectra
  CplxBuf tspec;    // an uncached template spectrum
  std::vector<double> tr, cor;  // row passes
  std::vector<float> rowmax;                  // peak search
  std::unique_ptr<detail::MaskedBuffers> masked;  // the masked path's, made on first need
  void ensure(SizeKey k) {
    if (size == k) return;
    real = alloc_real(n_real(k));
    cplx = alloc_cplx(n_cplx(k));
    tspec.reset();
    size = k;
  }
};

// ---------------------------------------------------------------------------
struct PreparedImage::Data {
  int H = 0, W = 0;
  std::vector<float> pix;  // after normalize_input
  double centre = 0;       // mean of pix, subtracted before the transform
  int fft_exp = 0;         // then scaled by 2^fft_exp (core::zncc_fft_exp)
  double flat_bound = 0;   // core::zncc_flat_bound (not computed for a masked image)
  bool host_tables = true;  // s1 and s2 built (PreparedImage's constructor)
  core::NoInitVector<double> s1, s2;
  // Exact flatness counts, built on first need (windows whose computed
  // variance is below flat_bound are rare).
  mutable std::once_flag counts_once;
  mutable core::NoInitVector<std::int32_t> nonzero, diff_h, diff_v;
  SpectrumCache spectra;
  std::vector<std::uint8_t> mask;  // kept_mask: empty unless some pixel is invalid
  // The image's side of a masked pair (prefix tables and double spectra of
  // its masked arrays), built on first need: for a masked image, or for an
  // unmasked one paired with a masked template.
  mutable std::once_flag side_once;
  mutable std::unique_ptr<detail::MaskedSide> side;
  const detail::MaskedSide& masked_side() const {
    std::call_once(side_once, [this] {
      side = std::make_unique<detail::MaskedSide>(pix.data(), mask.empty() ? nullptr : mask.data(), H, W,
                                                  /*flip=*/false, /*cache=*/true);
    });
    return *side;
  }
  // Window tables (build_window_table) per template shape and region.
  mutable std::mutex windows_mutex;
  struct WindowTable {
    std::unique_ptr<float[]> data;  // core::zncc_inv_sd_table of each window
    std::size_t size = 0;
  };
  mutable std::map<std::array<int, 6>, WindowTable> windows;

  const float* window_table(int h, int w, Region r) const;

  void build_counts() const {
    std::call_once(counts_once, [this] {
      nonzero = table_storage<std::int32_t>(H, W);
      diff_h = table_storage<std::int32_t>(H, W);
      diff_v = table_storage<std::int32_t>(H, W);
      std::int32_t *nz = nonzero.data(), *dh = diff_h.data(), *dv = diff_v.data();
      core::zncc_prefix_sweep(
          H, W, [&](int y) { core::zncc_counts_row(pix.data(), W, y, nz, dh, dv); }, nz, dh, dv);
    });
  }
  // The CPU's prefix sums exist (else a std::logic_error: a GPU image).
  void require_tables() const {
    if (!host_tables)
      throw std::logic_error("xcorr: image prepared without host tables (GPU backend) used on the CPU");
  }
  core::ZnccImageTables tables() const {
    require_tables();
    return {s1.data(), s2.data(), nonzero.data(), diff_h.data(), diff_v.data(), H, W, centre,
            flat_bound, fft_exp};
  }
  // The tables without the counts, which the row passes of core/zncc_rows.hpp
  // do not read (and another thread may be building under counts_once).
  core::ZnccImageTables sums() const {
    require_tables();
    return {s1.data(), s2.data(), nullptr, nullptr, nullptr, H, W, centre, flat_bound, fft_exp};
  }

  // The spectrum of (pix - centre) 2^fft_exp, zero-padded to k; computed once
  // per size (planned from wisdom or not: Options::fft_from_wisdom).
  const fftwf_complex* spectrum(SizeKey k, float* scratch, bool wisdom) const {
    return spectra.get(k, [&](fftwf_complex* out) {
      const double scale = std::ldexp(1.0, fft_exp);
      padded_spectrum(
          k, H, W,
          [&](int y, float* dst) {
            for (int x = 0; x < W; ++x) dst[x] = core::zncc_fft_input(pix[std::size_t(y) * W + x], centre, scale);
          },
          scratch, out, wisdom);
    });
  }
};

PreparedImage::PreparedImage(View image, bool normalize_input, bool host_tables)
    : d_(std::make_unique<Data>()) {
  check_view(image, "image");
  Data& d = *d_;
  d.H = image.height;
  d.W = image.width;
  const std::size_t n = std::size_t(d.H) * d.W;
  d.pix.assign(image.data, image.data + n);
  if (normalize_input) {
    const double m = pixel_sums(d.pix).sum / double(n);
    for (float& f : d.pix) f = float(double(f) - m);
  }
  const PixelSums sums = pixel_sums(d.pix);
  d.centre = sums.sum / double(n);
  // |pixel - centre| <= max_abs + |centre|.
  d.fft_exp = core::zncc_fft_exp(sums.max_abs + std::fabs(d.centre));
  d.mask = kept_mask(image);
  // A masked image always takes the masked path, which has its own tables.
  d.host_tables = host_tables && d.mask.empty();
  if (d.host_tables) {
    d.s1 = table_storage<double>(d.H, d.W);
    d.s2 = table_storage<double>(d.H, d.W);
    double *s1 = d.s1.data(), *s2 = d.s2.data();
    const float* p = d.pix.data();
    const int W = d.W;
    core::zncc_prefix_sweep(d.H, W, [&](int y) { core::zncc_sums_row(p, W, y, s1, s2); }, s1, s2);
  }
  if (!d.mask.empty()) return;  // the masked path has its own bounds (masked.hpp)
  d.flat_bound = core::zncc_flat_bound(d.H, d.W, sums.squares, sums.abs, sums.max_abs);
}

PreparedImage::~PreparedImage() = default;
int PreparedImage::height() const { return d_->H; }
int PreparedImage::width() const { return d_->W; }
std::size_t PreparedImage::bytes() const {
  std::size_t b = d_->pix.size() * sizeof(float) + (d_->s1.size() + d_->s2.size()) * sizeof(double);
  b += (d_->nonzero.size() + d_->diff_h.size() + d_->diff_v.size()) * sizeof(std::int32_t);
  {
    std::lock_guard<std::mutex> lock(d_->windows_mutex);
    for (const auto& [k, t] : d_->windows) b += t.size * sizeof(float);
  }
  if (d_->side) b += d_->side->bytes();
  return b + d_->spectra.bytes() + d_->mask.size();
}
bool PreparedImage::masked() const { return !d_->mask.empty(); }

void PreparedImage::transform_for(int h, int w, const Options& options, Workspace& workspace) const {
  // A template too large is reported by correlate(); a masked image's pairs
  // transform its masked arrays instead, on first need.
  if (h > d_->H || w > d_->W || masked()) return;
  const SizeKey k = fft_size(d_->H, d_->W, h, w, options);
  Workspace::Buffers& b = workspace.buffers();
  b.ensure(k);
  d_->spectrum(k, b.real.get(), options.fft_from_wisdom);
}

// ---------------------------------------------------------------------------
struct PreparedTemplate::Data {
  int h = 0, w = 0;
  std::vector<float> pix;
  double tbar = 0, ssd_t = 0;
  int fft_exp = 0;  // the transform's input is (pix - tbar) 2^fft_exp (core::zncc_fft_exp)
  core::NoInitVector<double> tc;  // prefix sums of pix - tbar (padding correction)
  bool cache = false;
  SpectrumCache spectra;
  std::vector<std::uint8_t> mask;  // as PreparedImage::Data::mask
  mutable std::once_flag side_once;
  mutable std::unique_ptr<detail::MaskedSide> side;
  const detail::MaskedSide& masked_side() const {
    std::call_once(side_once, [this] {
      side = std::make_unique<detail::MaskedSide>(pix.data(), mask.empty() ? nullptr : mask.data(), h, w,
                                                  /*flip=*/true, cache);
    });
    return *side;
  }

  core::ZnccTemplateStats stats() const { return {tc.data(), h, w, ssd_t, fft_exp}; }

  // The spectrum of the flipped, centred template (times 2^fft_exp)
  // zero-padded to k, into out.
  void transform(SizeKey k, float* scratch, fftwf_complex* out, bool wisdom) const {
    const double scale = std::ldexp(1.0, fft_exp);
    padded_spectrum(
        k, h, w,
        [&](int y, float* dst) {  // padded row y is template row h - 1 - y, reversed
          const float* src = pix.data() + std::size_t(h - 1 - y) * w;
          for (int j = 0; j < w; ++j) dst[w - 1 - j] = core::zncc_fft_input(src[j], tbar, scale);
        },
        scratch, out, wisdom);
  }
  // Cached spectrum, or nullptr without caching.
  const fftwf_complex* cached_spectrum(SizeKey k, float* scratch, bool wisdom) const {
    if (!cache) return nullptr;
    return spectra.get(k, [&](fftwf_complex* out) { transform(k, scratch, out, wisdom); });
  }
};

PreparedTemplate::PreparedTemplate(View templ, bool cache_spectra) : d_(std::make_unique<Data>()) {
  check_view(templ, "template");
  Data& d = *d_;
  d.h = templ.height;
  d.w = templ.width;
  d.cache = cache_spectra;
  const std::size_t nt = std::size_t(d.h) * d.w;
  d.pix.assign(templ.data, templ.data + nt);
  d.mask = kept_mask(templ);
  double tsum = 0;
  for (float f : d.pix) tsum += f;
  d.tbar = tsum / double(nt);
  double max_abs = 0;
  for (float f : d.pix) {
    const double v = double(f) - d.tbar;
    d.ssd_t += v * v;
    max_abs = std::max(max_abs, std::fabs(v));
  }
  d.fft_exp = core::zncc_fft_exp(max_abs);
  d.tc = table_storage<double>(d.h, d.w);
  double* tc = d.tc.data();
  core::zncc_prefix_sweep(
      d.h, d.w, [&](int y) { core::zncc_centred_row(d.pix.data(), d.w, y, d.tbar, tc); }, tc);
}

PreparedTemplate::~PreparedTemplate() = default;
int PreparedTemplate::height() const { return d_->h; }
int PreparedTemplate::width() const { return d_->w; }
std::size_t PreparedTemplate::bytes() const {
  return d_->pix.size() * sizeof(float) + d_->tc.size() * sizeof(double) + d_->spectra.bytes() +
         d_->mask.size() + (d_->side ? d_->side->bytes() : 0);
}
bool PreparedTemplate::masked() const { return !d_->mask.empty(); }

void PreparedTemplate::transform_for(int H, int W, const Options& options, Workspace& workspace) const {
  // A masked pair's template spectra are computed by its first pair.
  if (!d_->cache || d_->h > H || d_->w > W || masked()) return;
  const SizeKey k = fft_size(H, W, d_->h, d_->w, options);
  Workspace::Buffers& b = workspace.buffers();
  b.ensure(k);
  d_->cached_spectrum(k, b.real.get(), options.fft_from_wisdom);
}

Workspace::Workspace() : b_(std::make_unique<Buffers>()) {}
Workspace::~Workspace() = default;
void Workspace::set_masked_correlator(std::function<void(const double*, const double*, int, int, double*)> f) {
  if (!b_->masked) b_->masked = std::make_unique<detail::MaskedBuffers>();
  b_->masked->correlate = std::move(f);
}

namespace {


// The window part of core::zncc_placement (core::zncc_window_row, its
// flat-window test, then 1/sqrt: core::zncc_inv_sd_row) for rows [r.y0, r.y1]
// and columns [r.x0, r.x1] of the map and a template of h x w, row after row
// into out. It depends on the image and
// the template's shape only, so it is computed once per image and shape
// (PreparedImage::Data::windows) for all the pairs of the image.
void build_window_table(const PreparedImage::Data& im, int h, int w, Region r, float* out) {
  const core::ZnccImageTables sums = im.sums();
  const int nx = r.x1 - r.x0 + 1;
  std::vector<double> d1(std::size_t(im.W) + 1), d2(std::size_t(im.W) + 1), row(static_cast<std::size_t>(nx));
  double* ws = row.data();
  for (int y = r.y0; y <= r.y1; ++y) {
    core::zncc_window_row(sums, h, w, y, r.x0, r.x1, d1.data(), d2.data(), ws);
    // Flat windows are rare, and the count tables are built on first need.
    if (min_of(ws, nx) <= im.flat_bound) {
      im.build_counts();
      core::zncc_zero_flat_windows(im.tables(), h, w, y, r.x0, r.x1, ws);
    }
    // The table holds 1/sqrt: no root or division per pair.
    core::zncc_inv_sd_row(ws, out + std::size_t(y - r.y0) * std::size_t(nx), nx, im.fft_exp);
  }
}

}  // namespace

const float* PreparedImage::Data::window_table(int h, int w, Region r) const {
  require_tables();
  std::lock_guard<std::mutex> lock(windows_mutex);
  auto& t = windows[{h, w, r.y0, r.y1, r.x0, r.x1}];
  if (!t.data) {
    t.size = std::size_t(r.y1 - r.y0 + 1) * std::size_t(r.x1 - r.x0 + 1);
    auto table = std::make_unique_for_overwrite<float[]>(t.size);  // every entry is written
    build_window_table(*this, h, w, r, table.get());
    t.data = std::move(table);
  }
  return t.data.get();
}

namespace {

// R for rows [r.y0, r.y1] and columns [r.x0, r.x1] of the map, written in place
// over the transform's output in `real` (row stride px), from the window table
// of the image and the template's shape (core::zncc_normalise_row). While a row
// is still in the cache, the largest R of its part of the search region goes
// to rowmax[y - search.y0] (find_peak_rows takes it from there): normalisation
// and peak search in one pass.
void normalise_region(const PreparedImage::Data& im, const PreparedTemplate::Data& t, Region r,
                      double eps, double min_overlap, float* real, int px, Workspace::Buffers& b, Region search,
                      std::vector<float>& rowmax) {
  const double min_count = min_overlap * double(t.h) * double(t.w);
  rowmax.resize(std::size_t(search.y1 - search.y0 + 1));
  const core::ZnccImageTables sums = im.sums();
  const core::ZnccTemplateStats stats = t.stats();
  const std::size_t nx = std::size_t(r.x1 - r.x0 + 1);
  const float* table = im.window_table(t.h, t.w, r);
  b.tr.resize(std::size_t(t.w) + 1);
  b.cor.resize(nx);
  for (int y = r.y0; y <= r.y1; ++y) {
    float* row = real + std::size_t(y) * std::size_t(px);
    core::zncc_normalise_row(sums, stats, y, r.x0, r.x1, eps, table + std::size_t(y - r.y0) * nx,
                             b.tr.data(), b.cor.data(), row + r.x0);
    if (min_overlap > 0)
      for (int x = r.x0; x <= r.x1; ++x)
        if (!core::zncc_overlap_ok(y, x, t.h, t.w, im.H, im.W, min_count)) row[x] = 0.0f;
    if (y >= search.y0 && y <= search.y1)
      rowmax[std::size_t(y - search.y0)] = max_of(row + search.x0, search.x1 - search.x0 + 1);
  }
}

}  // namespace


namespace {
SizeKey transform_numerator(const PreparedImage::Data& im, const PreparedTemplate::Data& t,
                            Region r, Workspace::Buffers& b, bool wisdom);

// The first mh rows and mw columns of the padded array src (row stride
// `stride`) into out, dense and row-major.
void copy_map(const float* src, int stride, int mh, int mw, std::vector<float>& out) {
  out.resize(std::size_t(mh) * mw);
  for (int y = 0; y < mh; ++y)
    std::copy(src + std::size_t(y) * stride, src + std::size_t(y) * stride + mw,
              out.data() + std::size_t(y) * mw);
}

void check_fits(const PreparedImage::Data& im, const PreparedTemplate::Data& t) {
  if (t.h > im.H || t.w > im.W)
    throw std::invalid_argument("xcorr: template " + std::to_string(t.h) + "x" +
                                std::to_string(t.w) + " is larger than the image " +
                                std::to_string(im.H) + "x" + std::to_string(im.W) +
                                " (as normxcorr2, h <= H and w <= W)");
}

// --top: the candidates of the searched region of the map still in the
// workspace (the map the peak was found on, so the first is the peak).
void fill_top(const float* real, int stride, Region search, const Options& options, std::span<core::ZnccBest> top) {
  if (options.top_k <= 0 || top.empty()) return;
  if (top.size() != std::size_t(options.top_k))
    throw std::logic_error("xcorr: the top list must hold top_k entries");
  top_candidates(real, stride, search, options.min_distance, top);
}

// correlate() for a pair with a masked side: R over region r (the searched
// region, or the whole map for full_map) into b.real at the float path's
// padded stride, then the same peak search.
Peak correlate_masked(const PreparedImage::Data& im, const PreparedTemplate::Data& t, const Options& options,
                      Region search, Region r, Workspace::Buffers& b, std::vector<float>* full_map,
                      std::span<core::ZnccBest> top) {
  const SizeKey k = fft_size(im.H, im.W, t.h, t.w, r);
  b.ensure(k);
  if (!b.masked) b.masked = std::make_unique<detail::MaskedBuffers>();
  float* real = b.real.get();
  detail::masked_region(im.masked_side(), t.masked_side(), r, options, *b.masked,
                        real + std::size_t(r.y0) * std::size_t(k.second) + std::size_t(r.x0), k.second);
  if (full_map) copy_map(real, k.second, im.H + t.h - 1, im.W + t.w - 1, *full_map);
  fill_top(real, k.second, search, options, top);
  return find_peak_rows(real, k.second, search, options.exclusion, b.rowmax, false);
}
}  // namespace

Peak correlate(const PreparedImage& image, const PreparedTemplate& templ, const Options& options,
               Workspace& workspace, std::vector<float>* full_map, std::span<core::ZnccBest> top) {
  const PreparedImage::Data& im = image.data();
  const PreparedTemplate::Data& t = templ.data();
  const int H = im.H, W = im.W, h = t.h, w = t.w;
  check_fits(im, t);
  const Region region = search_region(H, W, h, w, options);
  const int mh = H + h - 1, mw = W + w - 1;
  const Region all{0, mh - 1, 0, mw - 1};
  Workspace::Buffers& b = workspace.buffers();
  if (!im.mask.empty() || !t.mask.empty())
    return correlate_masked(im, t, options, region, full_map ? all : region, b, full_map, top);
  const SizeKey k = transform_numerator(im, t, full_map ? all : region, b, options.fft_from_wisdom);
  float* real = b.real.get();
  // real[y*px + x] = sum over the window of (pix - centre) * (t - tbar)
  normalise_region(im, t, full_map ? all : region, options.eps, options.min_overlap, real, k.second, b, region,
                   b.rowmax);
  if (full_map) copy_map(real, k.second, mh, mw, *full_map);
  fill_top(real, k.second, region, options, top);
  return find_peak_rows(real, k.second, region, options.exclusion, b.rowmax, true);
}

namespace {

// The numerator for every placement of region r into b.real (row stride: the
// padded width, fft_size(H, W, h, w, r)).
SizeKey transform_numerator(const PreparedImage::Data& im, const PreparedTemplate::Data& t,
                            Region r, Workspace::Buffers& b, bool wisdom) {
  check_fits(im, t);
  const SizeKey k = fft_size(im.H, im.W, t.h, t.w, r);
  b.ensure(k);
  const std::size_t nr = n_real(k), nc = n_cplx(k);

  const fftwf_complex* ispec = im.spectrum(k, b.real.get(), wisdom);
  const fftwf_complex* tspec = t.cached_spectrum(k, b.real.get(), wisdom);
  if (!tspec) {
    if (!b.tspec) b.tspec = alloc_cplx(nc);
    t.transform(k, b.real.get(), b.tspec.get(), wisdom);
    tspec = b.tspec.get();
  }
  const float scale = 1.0f / float(nr);
  fftwf_complex* c = b.cplx.get();
  for (std::size_t i = 0; i < nc; ++i) {
    const float re = tspec[i][0] * ispec[i][0] - tspec[i][1] * ispec[i][1];
    const float imv = tspec[i][0] * ispec[i][1] + tspec[i][1] * ispec[i][0];
    c[i][0] = re * scale;
    c[i][1] = imv * scale;
  }
  // Only the rows of r are read (normalise_region, the peak search).
  const PlanPair p = PlanCache::instance().get(k, wisdom);
  inverse_rows(p.inv, p.c2r, k.first, k.second, r.y0, r.y1, c, b.real.get());
  return k;
}

}  // namespace

core::ZnccImageTables zncc_tables(const PreparedImage& image) {
  image.data().build_counts();
  return image.data().tables();
}

core::ZnccTemplateStats zncc_stats(const PreparedTemplate& templ) { return templ.data().stats(); }

ImageData image_data(const PreparedImage& image) {
  const PreparedImage::Data& d = image.data();
  return {d.pix, d.H, d.W, d.centre, d.flat_bound, d.fft_exp};
}
std::span<const float> template_pixels(const PreparedTemplate& templ) { return templ.data().pix; }
double template_mean(const PreparedTemplate& templ) { return templ.data().tbar; }

std::vector<float> numerator_map(const PreparedImage& image, const PreparedTemplate& templ,
                                 Workspace& workspace) {
  const PreparedImage::Data& im = image.data();
  const PreparedTemplate::Data& t = templ.data();
  const int mh = im.H + t.h - 1, mw = im.W + t.w - 1;
  const SizeKey k = transform_numerator(im, t, Region{0, mh - 1, 0, mw - 1}, workspace.buffers(), false);
  std::vector<float> m;
  copy_map(workspace.buffers().real.get(), k.second, mh, mw, m);
  return m;
}

}  // namespace tessera::xcorr
