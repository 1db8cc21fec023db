// The FFT-based ZNCC of src/xcorr against references written here independently:
// a brute-force spatial ZNCC in double over the explicitly zero-padded image
// (DESIGN.md, "Xcorr: semantics"), and for valid mode the centred formula of
// OpenCV's TM_CCOEFF_NORMED.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/zncc.hpp"
#include "xcorr/peak_search.hpp"
#include "xcorr/xcorr.hpp"
#include "xcorr_test_util.hpp"

using namespace tessera::xcorr;

using namespace tessera::xcorr::test;

namespace {

// Brute force: pad the image by h-1 / w-1 zeros on every side, then for each
// placement sum directly in double. Returns the (H+h-1) x (W+w-1) map.
std::vector<double> brute_zncc(const Img& im, const Img& t, double eps = 1e-6) {
  const int H = im.h, W = im.w, h = t.h, w = t.w;
  const int PH = H + 2 * (h - 1), PW = W + 2 * (w - 1);
  std::vector<double> pad(std::size_t(PH) * PW, 0.0);
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) pad[std::size_t(y + h - 1) * PW + x + w - 1] = im.v[std::size_t(y) * W + x];
  const double A = double(h) * w;
  double tsum = 0;
  for (float f : t.v) tsum += f;
  const double tbar = tsum / A;
  double ssdt = 0;
  for (float f : t.v) ssdt += (f - tbar) * (f - tbar);
  const int mh = H + h - 1, mw = W + w - 1;
  std::vector<double> R(std::size_t(mh) * mw);
  for (int y = 0; y < mh; ++y)
    for (int x = 0; x < mw; ++x) {
      double s1 = 0, s2 = 0, c = 0;
      for (int i = 0; i < h; ++i)
        for (int j = 0; j < w; ++j) {
          const double p = pad[std::size_t(y + i) * PW + x + j];
          s1 += p;
          s2 += p * p;
          c += p * t.v[std::size_t(i) * w + j];
        }
      const double den = (s2 - s1 * s1 / A) * ssdt;
      R[std::size_t(y) * mw + x] = den <= eps ? 0.0 : (c - s1 * tbar) / std::sqrt(den);
    }
  return R;
}

// First maximum in row-major order over rows [y0, y1] and columns [x0, x1].
template <class T>
std::pair<int, int> argmax(const std::vector<T>& m, int mw, int y0, int y1, int x0, int x1) {
  std::pair<int, int> best{y0, x0};
  T bv = m[std::size_t(y0) * mw + x0];
  for (int y = y0; y <= y1; ++y)
    for (int x = x0; x <= x1; ++x)
      if (m[std::size_t(y) * mw + x] > bv) bv = m[std::size_t(y) * mw + x], best = {y, x};
  return best;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<double>& b) {
  EXPECT_EQ(a.size(), b.size());
  double d = 0;
  for (std::size_t i = 0; i < a.size(); ++i) d = std::max(d, std::abs(double(a[i]) - b[i]));
  return d;
}

struct Case { int H, W, h, w; };

}  // namespace

TEST(Xcorr, FastFftSizes) {
  EXPECT_EQ(fast_fft_size(1), 1);
  EXPECT_EQ(fast_fft_size(11), 12);
  EXPECT_EQ(fast_fft_size(13), 14);
  EXPECT_EQ(fast_fft_size(97), 98);
  EXPECT_EQ(fast_fft_size(1279), 1280);
  EXPECT_EQ(fast_fft_size(15, true), 16);
  EXPECT_EQ(fast_fft_size(21, true), 24);
}

TEST(Xcorr, RandomInputsMatchBruteForce) {
  std::mt19937 rng(1234);
  const Case cases[] = {{7, 9, 3, 4},   {8, 8, 2, 2},  {16, 12, 5, 7}, {13, 17, 13, 17},
                        {10, 11, 1, 1}, {1, 9, 1, 3},  {9, 5, 9, 1},   {20, 20, 6, 6},
                        {33, 31, 8, 11}, {64, 48, 17, 9}};
  for (const Case& c : cases) {
    SCOPED_TRACE(std::to_string(c.H) + "x" + std::to_string(c.W) + " / " + std::to_string(c.h) +
                 "x" + std::to_string(c.w));
    Img im = random_img(c.H, c.W, rng), t = random_img(c.h, c.w, rng);
    const auto ref = brute_zncc(im, t);
    const auto got = xcorr_map(im.view(), t.view());
    EXPECT_LE(max_abs_diff(got, ref), 1e-6);
    const int mh = c.H + c.h - 1, mw = c.W + c.w - 1;
    const Peak p = xcorr_peak(im.view(), t.view());
    const auto [ry, rx] = argmax(ref, mw, 0, mh - 1, 0, mw - 1);
    EXPECT_EQ(p.y, ry);
    EXPECT_EQ(p.x, rx);
    EXPECT_NEAR(p.value, ref[std::size_t(ry) * mw + rx], 1e-6);
  }
}

TEST(Xcorr, LargeOffsetDataMatchesBruteForce) {
  // Electron-microscopy-like counts: a large offset and a small spread. The image
  // is centred before the float FFT, so the offset does not cost precision.
  std::mt19937 rng(7);
  Img im = random_img(40, 36, rng, 30000.f, 30400.f), t = random_img(9, 12, rng, 29900.f, 30500.f);
  const auto ref = brute_zncc(im, t);
  EXPECT_LE(max_abs_diff(xcorr_map(im.view(), t.view()), ref), 1e-5);
  const Peak p = xcorr_peak(im.view(), t.view());
  const auto [ry, rx] = argmax(ref, 36 + 12 - 1, 0, 40 + 9 - 2, 0, 36 + 12 - 2);
  EXPECT_EQ(p.y, ry);
  EXPECT_EQ(p.x, rx);
}

// R does not depend on the data's units. Scaled by powers of two (exact in
// float), image and template give the bits of the unscaled map, with eps scaled
// as the squared denominator it bounds; without the transform's own scaling
// (core::zncc_fft_exp), a scale of 2^60 made every value NaN (the spectra's
// product overflowed float) and 2^-100 lost the map to underflow; without the
// window tables' (core::zncc_inv_sd_table), 2^120 (values near 7e37) lost
// digits to subnormal floats.
TEST(Xcorr, DataScaledByPowersOfTwoGiveTheSameBits) {
  std::mt19937 rng(31);
  Img im = random_img(64, 64, rng, 50.f, 60.f);
  const Img t0 = random_img(16, 16, rng, 40.f, 70.f);
  for (int y = 0; y < 16; ++y)  // a template cut from the image, and a flat patch (R exactly 0)
    for (int x = 0; x < 16; ++x) im.at(20 + y, 30 + x) = t0.v[std::size_t(y) * 16 + x];
  for (int y = 0; y < 12; ++y)
    for (int x = 0; x < 12; ++x) im.at(y, 50 + x) = 55.f;
  const Img& t = t0;
  Options o;
  o.eps = 1e-6;
  const std::vector<float> ref = xcorr_map(im.view(), t.view(), o);
  const Peak ref_peak = xcorr_peak(im.view(), t.view(), o);
  ASSERT_EQ(ref_peak.y, 20 + 15);
  ASSERT_EQ(ref_peak.x, 30 + 15);
  auto scaled = [](const Img& m, int e) {
    Img s = m;
    for (float& f : s.v) f = std::ldexp(f, e);
    return s;
  };
  for (const auto [ei, et] : {std::array<int, 2>{60, 60}, std::array<int, 2>{100, -20},
                              std::array<int, 2>{-100, -100}, std::array<int, 2>{-60, 90},
                              std::array<int, 2>{120, 120}, std::array<int, 2>{-120, 0}}) {
    const std::string what = "image 2^" + std::to_string(ei) + ", template 2^" + std::to_string(et);
    const Img si = scaled(im, ei), st = scaled(t, et);
    Options os = o;
    os.eps = std::ldexp(o.eps, 2 * ei + 2 * et);
    const std::vector<float> got = xcorr_map(si.view(), st.view(), os);
    ASSERT_EQ(got.size(), ref.size());
    int differ = 0;
    for (std::size_t i = 0; i < ref.size(); ++i) differ += std::memcmp(&got[i], &ref[i], sizeof(float)) != 0;
    EXPECT_EQ(differ, 0) << what;
    const Peak p = xcorr_peak(si.view(), st.view(), os);
    EXPECT_EQ(p.y, ref_peak.y) << what;
    EXPECT_EQ(p.x, ref_peak.x) << what;
    EXPECT_EQ(p.value, ref_peak.value) << what;
  }
}

TEST(Xcorr, TemplateCutFromImagePeaksAtItsOffset) {
  std::mt19937 rng(99);
  Img im = random_img(40, 50, rng);
  for (auto [y0, x0, h, w] : std::vector<std::array<int, 4>>{{12, 20, 10, 12}, {0, 0, 7, 5},
                                                            {33, 41, 7, 9}, {5, 30, 21, 3}}) {
    const Img t = cut(im, y0, x0, h, w);
    const Peak p = xcorr_peak(im.view(), t.view());
    EXPECT_EQ(p.y, y0 + h - 1);  // template top-left at image (y - h + 1, x - w + 1)
    EXPECT_EQ(p.x, x0 + w - 1);
    EXPECT_NEAR(p.value, 1.0f, 1e-5f);
  }
}

TEST(Xcorr, FlatWindowsGiveExactlyZeroNeverNan) {
  std::mt19937 rng(5);
  // A flat block of a large value inside a random image: every window inside the
  // block has zero variance, so R is exactly 0 there (not a rounding residue).
  Img im = random_img(48, 48, rng, 1000.f, 5000.f);
  for (int y = 8; y < 40; ++y)
    for (int x = 4; x < 44; ++x) im.at(y, x) = 4321.123f;
  const Img t = random_img(8, 6, rng, 0.f, 3000.f);
  const auto got = xcorr_map(im.view(), t.view());
  const auto ref = brute_zncc(im, t);
  const int mw = 48 + 6 - 1;
  int flat = 0;
  for (int y = 8 + 8 - 1; y < 40; ++y)
    for (int x = 4 + 6 - 1; x < 44; ++x, ++flat) EXPECT_EQ(got[std::size_t(y) * mw + x], 0.0f);
  EXPECT_GT(flat, 500);
  for (float v : got) ASSERT_TRUE(std::isfinite(v));
  EXPECT_LE(max_abs_diff(got, ref), 1e-5);

  // Zero image, constant template: the whole map is 0. A constant image: 0 at
  // every full-overlap placement (the zero padding makes the others non-flat).
  Img cst{20, 30, std::vector<float>(600, 7.5f)}, zero{20, 30, std::vector<float>(600, 0.f)};
  Img tc{5, 4, std::vector<float>(20, 3.f)};
  const Img tr = random_img(5, 4, rng);
  for (const auto& m : {xcorr_map(zero.view(), tr.view()), xcorr_map(im.view(), tc.view())})
    for (float v : m) ASSERT_EQ(v, 0.0f);
  const auto mc = xcorr_map(cst.view(), tr.view());
  for (int y = 4; y < 20; ++y)
    for (int x = 3; x < 30; ++x) ASSERT_EQ(mc[std::size_t(y) * 33 + x], 0.0f);
  for (float v : mc) ASSERT_TRUE(std::isfinite(v));
  EXPECT_LE(max_abs_diff(mc, brute_zncc(cst, tr)), 1e-6);
}

TEST(Xcorr, AsymmetricCropSearchesOnlyTheInnerRegion) {
  std::mt19937 rng(11);
  Img im = random_img(30, 40, rng);
  // A perfect match near the left edge that the column crop excludes.
  const Img t = cut(im, 10, 1, 6, 8);
  const int mh = 30 + 6 - 1, mw = 40 + 8 - 1;
  const auto ref = brute_zncc(im, t);
  EXPECT_EQ(xcorr_peak(im.view(), t.view()).x, 1 + 8 - 1);
  for (auto [cy, cx] : std::vector<std::pair<int, int>>{{2, 9}, {9, 2}, {0, 12}, {13, 0}}) {
    Options o;
    o.crop_y = cy, o.crop_x = cx;
    const Peak p = xcorr_peak(im.view(), t.view(), o);
    const auto [ry, rx] = argmax(ref, mw, cy, mh - 1 - cy, cx, mw - 1 - cx);
    EXPECT_EQ(p.y, ry) << cy << "," << cx;  // full-map frame, not the cropped one
    EXPECT_EQ(p.x, rx) << cy << "," << cx;
    EXPECT_GE(p.y, cy);
    EXPECT_GE(p.x, cx);
  }
}

// --min-overlap: R = 0 where fewer than F*h*w template pixels fall inside the
// image (counted here pixel by pixel), the rest of the map unchanged; the peak
// is the brute force's first maximum of that map. F = 1 leaves the
// full-overlap block only: the valid mode's peak.
TEST(Xcorr, MinOverlapZeroesThePlacementsWithTooFewPixelsInside) {
  std::mt19937 rng(77);
  const Case cases[] = {{16, 12, 5, 7}, {20, 20, 6, 6}, {33, 31, 8, 11}, {9, 5, 9, 1}, {10, 11, 1, 1}};
  for (const Case& c : cases) {
    Img im = random_img(c.H, c.W, rng), t = random_img(c.h, c.w, rng);
    const auto ref = brute_zncc(im, t);
    const int mh = c.H + c.h - 1, mw = c.W + c.w - 1;
    for (const double f : {0.05, 0.3, 0.5, 0.99, 1.0}) {
      SCOPED_TRACE(std::to_string(c.H) + "x" + std::to_string(c.W) + " / " + std::to_string(c.h) + "x" +
                   std::to_string(c.w) + ", min overlap " + std::to_string(f));
      std::vector<double> want = ref;
      for (int y = 0; y < mh; ++y)
        for (int x = 0; x < mw; ++x) {
          int inside = 0;  // template pixel (i, j) lies on image pixel (y - h + 1 + i, x - w + 1 + j)
          for (int i = 0; i < c.h; ++i)
            for (int j = 0; j < c.w; ++j) {
              const int iy = y - c.h + 1 + i, ix = x - c.w + 1 + j;
              inside += iy >= 0 && iy < c.H && ix >= 0 && ix < c.W;
            }
          if (inside < f * c.h * c.w) want[std::size_t(y) * mw + x] = 0.0;
        }
      Options o;
      o.min_overlap = f;
      const auto got = xcorr_map(im.view(), t.view(), o);
      EXPECT_LE(max_abs_diff(got, want), 1e-6);
      const Peak p = xcorr_peak(im.view(), t.view(), o);
      const auto [ry, rx] = argmax(want, mw, 0, mh - 1, 0, mw - 1);
      EXPECT_EQ(p.y, ry);
      EXPECT_EQ(p.x, rx);
      if (f == 1.0) {
        Options v;
        v.mode = Mode::valid;
        const Peak q = xcorr_peak(im.view(), t.view(), v);
        EXPECT_EQ(p.y, q.y);
        EXPECT_EQ(p.x, q.x);
        EXPECT_NEAR(p.value, q.value, 1e-6);  // valid mode transforms a smaller map: other rounding
      }
    }
    Options o;  // 0: today's map, bit for bit
    const auto base = xcorr_map(im.view(), t.view());
    o.min_overlap = 0;
    EXPECT_EQ(xcorr_map(im.view(), t.view(), o), base);
  }
}

TEST(Xcorr, ValidModeMatchesOpenCvCcoeffNormed) {
  std::mt19937 rng(21);
  for (const Case& c : {Case{25, 30, 7, 5}, Case{16, 16, 16, 3}, Case{12, 19, 4, 19}}) {
    Img im = random_img(c.H, c.W, rng), t = random_img(c.h, c.w, rng);
    // OpenCV TM_CCOEFF_NORMED: R(u,v) over the (H-h+1) x (W-w+1) full-overlap
    // placements, centred by the window and template means.
    const int vh = c.H - c.h + 1, vw = c.W - c.w + 1;
    std::vector<double> cv(std::size_t(vh) * vw);
    double tbar = 0;
    for (float f : t.v) tbar += f;
    tbar /= double(t.v.size());
    for (int u = 0; u < vh; ++u)
      for (int v = 0; v < vw; ++v) {
        double ibar = 0;
        for (int i = 0; i < c.h; ++i)
          for (int j = 0; j < c.w; ++j) ibar += im.at(u + i, v + j);
        ibar /= double(c.h) * c.w;
        double num = 0, di = 0, dt = 0;
        for (int i = 0; i < c.h; ++i)
          for (int j = 0; j < c.w; ++j) {
            const double a = im.at(u + i, v + j) - ibar, b = t.v[std::size_t(i) * c.w + j] - tbar;
            num += a * b, di += a * a, dt += b * b;
          }
        cv[std::size_t(u) * vw + v] = num / std::sqrt(di * dt);
      }
    const auto full = xcorr_map(im.view(), t.view());
    const int mw = c.W + c.w - 1;
    for (int u = 0; u < vh; ++u)
      for (int v = 0; v < vw; ++v)
        ASSERT_NEAR(full[std::size_t(u + c.h - 1) * mw + v + c.w - 1], cv[std::size_t(u) * vw + v], 1e-6);
    Options o;
    o.mode = Mode::valid;
    const Peak p = xcorr_peak(im.view(), t.view(), o);
    const auto [u, v] = argmax(cv, vw, 0, vh - 1, 0, vw - 1);
    EXPECT_EQ(p.y, u + c.h - 1);  // full-map frame
    EXPECT_EQ(p.x, v + c.w - 1);
  }
}

TEST(Xcorr, TiesGoToTheFirstInRowMajorOrder) {
  std::mt19937 rng(3);
  const Img im = random_img(12, 14, rng);
  const Img t{3, 5, std::vector<float>(15, 2.f)};  // flat template: R = 0 everywhere
  Peak p = xcorr_peak(im.view(), t.view());
  EXPECT_EQ(p.y, 0); EXPECT_EQ(p.x, 0); EXPECT_EQ(p.value, 0.f);
  Options o;
  o.crop_y = 2, o.crop_x = 3;
  p = xcorr_peak(im.view(), t.view(), o);
  EXPECT_EQ(p.y, 2); EXPECT_EQ(p.x, 3);
  o = {};
  o.mode = Mode::valid;
  p = xcorr_peak(im.view(), t.view(), o);
  EXPECT_EQ(p.y, 2); EXPECT_EQ(p.x, 4);
}

TEST(Xcorr, NormalizeInputLeavesCallerDataAlone) {
  std::mt19937 rng(8);
  Img im = random_img(21, 18, rng, 100.f, 140.f);
  const Img t = random_img(6, 5, rng);
  const std::vector<float> before = im.v;
  Options o;
  o.normalize_input = true;
  const auto got = xcorr_map(im.view(), t.view(), o);
  EXPECT_EQ(im.v, before);
  Img centred = im;
  double m = 0;
  for (float f : im.v) m += f;
  m /= double(im.v.size());
  for (float& f : centred.v) f = float(f - m);
  EXPECT_LE(max_abs_diff(got, brute_zncc(centred, t)), 1e-6);
  // Zero-mean padding differs from raw padding at the borders: the maps differ.
  EXPECT_GT(max_abs_diff(got, brute_zncc(im, t)), 1e-3);
}

// The GPU backend's images (no host prefix sums) hand the device the same
// pixels, centre and flat bound; CPU use of them is refused, never a crash.
TEST(Xcorr, ImagesWithoutHostTablesKeepTheirDataAndRefuseCpuUse) {
  std::mt19937 rng(23);
  const Img im = random_img(33, 41, rng, 900.f, 1100.f);
  const Img t = random_img(7, 6, rng);
  for (const bool normalize : {false, true}) {
    const PreparedImage full(im.view(), normalize), bare(im.view(), normalize, false);
    const ImageData a = image_data(full), b = image_data(bare);
    ASSERT_EQ(a.pixels.size(), b.pixels.size());
    EXPECT_EQ(0, std::memcmp(a.pixels.data(), b.pixels.data(), a.pixels.size() * sizeof(float)));
    EXPECT_EQ(a.centre, b.centre);
    EXPECT_EQ(a.flat_bound, b.flat_bound);
    EXPECT_EQ(a.height, b.height);
    EXPECT_EQ(a.width, b.width);
    // Two 34 x 42 double tables fewer.
    EXPECT_EQ(full.bytes() - bare.bytes(), 2 * std::size_t(34) * 42 * sizeof(double));
    const PreparedTemplate pt(t.view(), false);
    Workspace ws;
    EXPECT_THROW(correlate(bare, pt, Options{}, ws), std::logic_error);
    EXPECT_THROW((void)zncc_tables(bare), std::logic_error);
    EXPECT_NO_THROW(correlate(full, pt, Options{}, ws));
  }
}

TEST(Xcorr, OneImageManyTemplatesGivesTheSameBitsAsOneShot) {
  std::mt19937 rng(17);
  const Img im = random_img(37, 29, rng);
  Correlator c;
  c.set_image(im.view());
  for (auto [h, w] : std::vector<std::pair<int, int>>{{5, 5}, {9, 4}, {5, 5}, {1, 29}, {37, 2}}) {
    const Img t = random_img(h, w, rng);
    EXPECT_EQ(c.map(t.view()), xcorr_map(im.view(), t.view()));
    const Peak a = c.peak(t.view()), b = xcorr_peak(im.view(), t.view());
    EXPECT_EQ(a.y, b.y); EXPECT_EQ(a.x, b.x); EXPECT_EQ(a.value, b.value);
  }
}

TEST(Xcorr, BadInputsThrowWithOneLineMessages) {
  std::mt19937 rng(2);
  Img im = random_img(10, 12, rng), t = random_img(3, 4, rng);
  auto expect_throw = [](auto&& f, const std::string& needle) {
    try {
      f();
      ADD_FAILURE() << "no exception; expected one mentioning '" << needle << "'";
    } catch (const std::invalid_argument& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(needle), std::string::npos) << msg;
      EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    }
  };
  Img bad = im;
  bad.at(4, 7) = std::numeric_limits<float>::quiet_NaN();
  expect_throw([&] { xcorr_peak(bad.view(), t.view()); }, "image has a non-finite value");
  expect_throw([&] { xcorr_peak(bad.view(), t.view()); }, "(4, 7)");
  Img badt = t;
  badt.at(2, 0) = -std::numeric_limits<float>::infinity();
  expect_throw([&] { xcorr_peak(im.view(), badt.view()); }, "template has a non-finite value");
  const Img tall = random_img(11, 2, rng), wide = random_img(2, 13, rng);
  expect_throw([&] { xcorr_peak(im.view(), tall.view()); }, "larger than the image");
  expect_throw([&] { xcorr_peak(im.view(), wide.view()); }, "larger than the image");
  expect_throw([&] { xcorr_map(View{im.v.data(), 0, 12}, t.view()); }, "image is empty");
  Options o;
  o.crop_y = 6;  // map has 12 rows: 6 + 6 leaves none
  expect_throw([&] { xcorr_peak(im.view(), t.view(), o); }, "leaves no placement");
  o = {};
  o.eps = -1;
  expect_throw([&] { Correlator c(o); }, "eps");
  o = {};
  o.crop_x = -1;
  expect_throw([&] { Correlator c(o); }, "crop");
  Correlator c;
  EXPECT_THROW(c.peak(t.view()), std::logic_error);
}

TEST(Xcorr, SubpixelPositionAndPeakQuality) {
  auto smooth = [](double y, double x) {
    return float(std::exp(-((y - 30) * (y - 30) + (x - 40) * (x - 40)) / (2 * 9.0)) +
                 0.7 * std::exp(-((y - 50) * (y - 50) + (x - 25) * (x - 25)) / (2 * 16.0)) +
                 0.4 * std::exp(-((y - 20) * (y - 20) + (x - 60) * (x - 60)) / (2 * 6.0)));
  };
  Img im{80, 80, std::vector<float>(80 * 80)};
  for (int y = 0; y < 80; ++y)
    for (int x = 0; x < 80; ++x) im.at(y, x) = smooth(y, x);
  const double dy = 0.3, dx = -0.2;
  Img t{40, 50, std::vector<float>(40 * 50)};
  for (int i = 0; i < 40; ++i)
    for (int j = 0; j < 50; ++j) t.at(i, j) = smooth(15 + i + dy, 18 + j + dx);
  const Peak p = xcorr_peak(im.view(), t.view());
  // Template row i matches image row 15 + i + dy: top-left at (15 + dy, 18 + dx),
  // full-map position (top + h - 1, left + w - 1).
  EXPECT_NEAR(p.sub_y, 15 + dy + 39, 0.1);
  EXPECT_NEAR(p.sub_x, 18 + dx + 49, 0.1);
  EXPECT_EQ(p.y, 15 + 39);
  EXPECT_EQ(p.x, 18 + 49);

  std::mt19937 rng(5);
  const Img noise = random_img(60, 70, rng);
  const Peak q = xcorr_peak(noise.view(), cut(noise, 20, 30, 16, 16).view());
  EXPECT_EQ(q.y, 20 + 15);
  EXPECT_EQ(q.x, 30 + 15);
  EXPECT_GT(q.peak_ratio, 2.0f);   // white noise: other placements correlate ~0.2
  EXPECT_GT(q.sharpness, 0.5f);    // neighbours of an exact match of white noise ~0
  EXPECT_NEAR(q.sub_y, q.y, 0.05);  // an exact match: no shift beyond the
  EXPECT_NEAR(q.sub_x, q.x, 0.05);  // asymmetry of the neighbours

  // A pattern repeated every 12 columns: the best placement elsewhere
  // matches as well as the peak (ratio 1 within rounding).
  Img stripes{40, 72, std::vector<float>(40 * 72)};
  const Img tile = random_img(40, 12, rng);
  for (int y = 0; y < 40; ++y)
    for (int x = 0; x < 72; ++x) stripes.at(y, x) = tile.v[std::size_t(y) * 12 + x % 12];
  Options o;
  o.mode = Mode::valid;
  const Peak s = xcorr_peak(stripes.view(), cut(stripes, 10, 12, 20, 24).view(), o);
  EXPECT_NEAR(s.value, 1.0f, 1e-5);
  EXPECT_NEAR(s.peak_ratio, 1.0f, 1e-5);
  EXPECT_EQ(s.x, 23);  // ties: the first repeat in row-major order
  // An exclusion zone covering the whole searched region leaves no second value.
  o.exclusion = 50;
  const Peak s2 = xcorr_peak(stripes.view(), cut(stripes, 10, 12, 20, 24).view(), o);
  EXPECT_EQ(s2.peak_ratio, std::numeric_limits<float>::infinity());
}

// Many pairs over threads, templates cached or not: the same bits as one pair at
// a time, whatever the thread count, in the order of the pairs.
TEST(Xcorr, PairsOverThreadsGiveTheSameBitsAsOneAtATime) {
  std::mt19937 rng(31);
  std::vector<Img> imgs, tpls;
  for (int i = 0; i < 4; ++i) imgs.push_back(random_img(40 + 3 * i, 45 - 2 * i, rng));
  for (int i = 0; i < 3; ++i) tpls.push_back(random_img(9 + i, 11 - i, rng));
  std::vector<std::pair<int, int>> pairs;
  for (int k = 0; k < 17; ++k) pairs.emplace_back(k % 4, (k * 7) % 3);
  Options o;
  o.crop_y = 2;
  o.crop_x = 3;
  std::vector<std::unique_ptr<PreparedImage>> pi;
  std::vector<const PreparedImage*> ip;
  for (const Img& m : imgs) {
    pi.push_back(std::make_unique<PreparedImage>(m.view(), false));
    ip.push_back(pi.back().get());
  }
  for (bool cache : {false, true}) {
    std::vector<std::unique_ptr<PreparedTemplate>> pt;
    std::vector<const PreparedTemplate*> tp;
    for (const Img& m : tpls) {
      pt.push_back(std::make_unique<PreparedTemplate>(m.view(), cache));
      tp.push_back(pt.back().get());
    }
    for (int threads : {1, 2, 3, 8}) {
      const std::vector<Peak> got = correlate_pairs(ip, tp, pairs, o, threads);
      ASSERT_EQ(got.size(), pairs.size());
      for (std::size_t i = 0; i < pairs.size(); ++i) {
        const Peak ref = xcorr_peak(imgs[std::size_t(pairs[i].first)].view(),
                                    tpls[std::size_t(pairs[i].second)].view(), o);
        EXPECT_EQ(got[i].y, ref.y);
        EXPECT_EQ(got[i].x, ref.x);
        EXPECT_EQ(std::memcmp(&got[i].value, &ref.value, sizeof(float)), 0);
        EXPECT_EQ(std::memcmp(&got[i].peak_ratio, &ref.peak_ratio, sizeof(float)), 0);
        EXPECT_EQ(got[i].sub_y, ref.sub_y);
      }
    }
  }
  // Streaming by image groups (images prepared by the thread that uses them):
  // the same bits, with more or fewer groups than threads; pairs not grouped
  // by image are refused.
  std::vector<std::pair<int, int>> grouped = pairs;
  std::stable_sort(grouped.begin(), grouped.end(),
                   [](auto a, auto b) { return a.first < b.first; });
  std::vector<View> views;
  for (const Img& m : imgs) views.push_back(m.view());
  std::vector<std::unique_ptr<PreparedTemplate>> pt;
  std::vector<const PreparedTemplate*> tp;
  for (const Img& m : tpls) {
    pt.push_back(std::make_unique<PreparedTemplate>(m.view(), true));
    tp.push_back(pt.back().get());
  }
  const std::vector<Peak> ref = correlate_pairs(ip, tp, grouped, o, 1);
  for (int threads : {1, 2, 3, 8}) {
    const std::vector<Peak> got = correlate_image_groups(views, false, tp, grouped, o, threads);
    ASSERT_EQ(got.size(), ref.size());
    for (std::size_t i = 0; i < ref.size(); ++i) {
      EXPECT_EQ(got[i].y, ref[i].y);
      EXPECT_EQ(got[i].x, ref[i].x);
      EXPECT_EQ(std::memcmp(&got[i].value, &ref[i].value, sizeof(float)), 0) << "threads " << threads;
      EXPECT_EQ(std::memcmp(&got[i].peak_ratio, &ref[i].peak_ratio, sizeof(float)), 0);
      EXPECT_EQ(got[i].sub_x, ref[i].sub_x);
    }
  }
  EXPECT_THROW(correlate_image_groups(views, false, tp, pairs, o, 2), std::invalid_argument);
  o.exclusion = -1;
  EXPECT_THROW(correlate_pairs(ip, {}, {}, o, 1), std::invalid_argument);
}

// Valid mode and crops transform at smaller sizes (the circular correlation is
// exact on the searched region only): the peak there is that of the brute-force
// map restricted to the region, within rounding.
TEST(Xcorr, SmallerTransformsForValidModeAndCropsAreExactOnTheRegion) {
  std::mt19937 rng(41);
  for (int trial = 0; trial < 12; ++trial) {
    const int H = 20 + trial * 3, W = 31 - trial, h = 3 + trial % 5, w = 2 + trial % 7;
    const Img im = random_img(H, W, rng);
    const Img t = random_img(h, w, rng);
    const std::vector<double> ref = brute_zncc(im, t);
    const int mw = W + w - 1;
    Options o;
    o.mode = trial % 2 ? Mode::valid : Mode::full;
    o.crop_y = trial % 3;
    o.crop_x = (trial * 2) % 5;
    const Region r = search_region(H, W, h, w, o);
    const auto [py, px] = fft_size(H, W, h, w, o);
    if (o.mode == Mode::valid) {
      EXPECT_EQ(py, fast_fft_size(H));  // valid: the image size suffices
    }
    const auto [by, bx] = argmax(ref, mw, r.y0, r.y1, r.x0, r.x1);
    const Peak p = xcorr_peak(im.view(), t.view(), o);
    EXPECT_EQ(p.y, by) << "trial " << trial;
    EXPECT_EQ(p.x, bx) << "trial " << trial;
    EXPECT_NEAR(p.value, ref[std::size_t(by) * mw + bx], 1e-6) << "trial " << trial;
  }
  // Valid mode of a 1024-wide image and a 256-wide template: 1024, not 1280.
  Options v;
  v.mode = Mode::valid;
  EXPECT_EQ(fft_size(1024, 1024, 256, 256, v), std::make_pair(1024, 1024));
  EXPECT_EQ(fft_size(1024, 1024, 256, 256, Options{}), std::make_pair(1280, 1280));
}
