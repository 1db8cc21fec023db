// Masked ZNCC (issue 15) against its definition, computed here in float64 by
// brute force: for each placement, the pixels valid in both image and template
// (the padding outside the image invalid), their two-pass means and sums, and
// R = 0 where n < min_overlap * (valid template pixels), n = 0, or a variance
// term <= eps. Random masks of several densities on either side, flat patches,
// templates as large as the image, 1-pixel-wide shapes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "xcorr/masked.hpp"
#include "xcorr/peak_search.hpp"
#include "xcorr_test_util.hpp"

namespace tessera::xcorr {
namespace {

using test::Img;

struct Mask {
  std::vector<std::uint8_t> v;  // empty: no mask
  const std::uint8_t* data() const { return v.empty() ? nullptr : v.data(); }
  bool valid(std::size_t i) const { return v.empty() || v[i] != 0; }
};

Mask random_mask(int h, int w, double p_valid, std::mt19937& rng) {
  std::bernoulli_distribution d(p_valid);
  Mask m;
  m.v.resize(std::size_t(h) * w);
  for (auto& b : m.v) b = d(rng) ? std::uint8_t(1 + rng() % 200) : 0;  // any nonzero is valid
  return m;
}

// R by the definition, in double, at full-map placement (y, x). *ruled: R is 0
// by a rule (overlap or a variance term), not by the value of the sums.
double brute(const Img& I, const Mask& mi, const Img& T, const Mask& mt, int y, int x, double eps,
             double min_overlap, bool* ruled = nullptr) {
  if (ruled) *ruled = true;
  std::vector<std::pair<double, double>> v;
  double nt = 0;
  for (int i = 0; i < T.h; ++i)
    for (int j = 0; j < T.w; ++j) {
      const std::size_t ti = std::size_t(i) * T.w + j;
      nt += mt.valid(ti);
      const int iy = y - T.h + 1 + i, ix = x - T.w + 1 + j;
      if (iy < 0 || iy >= I.h || ix < 0 || ix >= I.w) continue;
      const std::size_t ii = std::size_t(iy) * I.w + ix;
      if (mi.valid(ii) && mt.valid(ti)) v.push_back({I.v[ii], T.v[ti]});
    }
  const double n = double(v.size());
  if (n == 0 || n < min_overlap * nt) return 0.0;
  double mi_ = 0, mt_ = 0;
  for (auto [a, b] : v) mi_ += a, mt_ += b;
  mi_ /= n;
  mt_ /= n;
  double sab = 0, saa = 0, sbb = 0;
  for (auto [a, b] : v) {
    sab += (a - mi_) * (b - mt_);
    saa += (a - mi_) * (a - mi_);
    sbb += (b - mt_) * (b - mt_);
  }
  if (saa <= eps || sbb <= eps) return 0.0;
  if (ruled) *ruled = false;
  return std::clamp(sab / std::sqrt(saa * sbb), -1.0, 1.0);
}

struct Case {
  int H, W, h, w;
  double p_image, p_template;  // fraction valid; 1: no mask on that side
  double min_overlap;
  bool flat;  // values from three levels: many windows whose valid pixels are equal
};

// The masked map over the full region, row-major.
std::vector<float> engine_map(const Img& I, const Mask& mi, const Img& T, const Mask& mt, const Options& o,
                              bool cache_template) {
  detail::MaskedSide im(I.v.data(), mi.data(), I.h, I.w, false, true);
  detail::MaskedSide t(T.v.data(), mt.data(), T.h, T.w, true, cache_template);
  const Region all{0, I.h + T.h - 2, 0, I.w + T.w - 2};
  detail::MaskedBuffers b;
  std::vector<float> m(std::size_t(all.y1 + 1) * (all.x1 + 1));
  detail::masked_region(im, t, all, o, b, m.data(), all.x1 + 1);
  return m;
}

TEST(Masked, MapMatchesTheDefinition) {
  std::mt19937 rng(15);
  const Case cases[] = {
      {13, 17, 5, 4, 0.6, 1, 0, false},    {13, 17, 5, 4, 1, 0.6, 0, false},
      {13, 17, 5, 4, 0.7, 0.7, 0, false},  {20, 11, 7, 9, 0.9, 0.5, 0.3, false},
      {16, 16, 16, 16, 0.5, 0.9, 0, false}, {9, 30, 1, 6, 0.8, 0.8, 0.5, false},
      {25, 19, 3, 3, 0.95, 1, 0, true},    {25, 19, 6, 5, 0.7, 0.8, 0, true},
      {21, 23, 5, 6, 1, 0.7, 0, true},
      {12, 14, 12, 1, 0.5, 0.5, 0.2, false}, {18, 18, 8, 8, 0.99, 0.99, 0.4, false},
  };
  int checked = 0, nonzero = 0, zero_by_flat = 0;
  for (const Case& c : cases) {
    for (int rep = 0; rep < 4; ++rep) {
      Img I = test::random_img(c.H, c.W, rng, -3.f, 40.f), T = test::random_img(c.h, c.w, rng, 100.f, 104.f);
      if (c.flat) {
        for (float& f : I.v) f = 1000.f + std::floor(f / 20.f);  // a few levels
        for (float& f : T.v) f = std::floor(f - 100.f) / 3.f;
      }
      const Mask mi = c.p_image < 1 ? random_mask(c.H, c.W, c.p_image, rng) : Mask{};
      const Mask mt = c.p_template < 1 ? random_mask(c.h, c.w, c.p_template, rng) : Mask{};
      auto any_invalid = [](const Mask& m) { return std::count(m.v.begin(), m.v.end(), 0) > 0; };
      if (!any_invalid(mi) && !any_invalid(mt)) continue;  // the unmasked path's pair
      Options o;
      o.min_overlap = c.min_overlap;
      // Flat windows with eps = 0: only the rounding bound makes their R exactly 0.
      if (c.flat) o.eps = 0;
      const std::vector<float> m = engine_map(I, mi, T, mt, o, rep % 2 == 0);
      const int mw = c.W + c.w - 1;
      for (int y = 0; y < c.H + c.h - 1; ++y)
        for (int x = 0; x < mw; ++x) {
          bool ruled = false;
          const double want = brute(I, mi, T, mt, y, x, o.eps, o.min_overlap, &ruled);
          const float got = m[std::size_t(y) * mw + x];
          ASSERT_NEAR(got, want, 2e-6) << "case " << c.H << "x" << c.W << " / " << c.h << "x" << c.w
                                       << " rep " << rep << " at (" << y << ", " << x << ")";
          ++checked;
          nonzero += !ruled;
          if (ruled) {
            ASSERT_EQ(got, 0.0f) << "R = 0 by a rule must be exactly 0 (" << y << ", " << x << ")";
          }
          zero_by_flat += c.flat && ruled;
        }
    }
  }
  EXPECT_GT(nonzero, checked / 2);
  EXPECT_GT(zero_by_flat, 100);  // the flat windows were exercised
}

// The peak of the searched region: the definition's argmax (ties to the first in
// row-major order) and its value within 1e-5, over many random masks.
TEST(Masked, PeakMatchesTheDefinition) {
  std::mt19937 rng(1515);
  int same = 0;
  for (int rep = 0; rep < 60; ++rep) {
    const int H = 14 + rep % 9, W = 12 + rep % 7, h = 3 + rep % 5, w = 2 + rep % 6;
    Img I = test::random_img(H, W, rng);
    const Img T = test::cut(I, rep % (H - h + 1), (rep * 7) % (W - w + 1), h, w);
    for (float& f : I.v) f += std::uniform_real_distribution<float>(-0.05f, 0.05f)(rng);
    const int side = rep % 3;  // image, template, both
    const Mask mi = side != 1 ? random_mask(H, W, 0.8, rng) : Mask{};
    const Mask mt = side != 0 ? random_mask(h, w, 0.8, rng) : Mask{};
    Options o;
    o.min_overlap = 0.5;
    const std::vector<float> m = engine_map(I, mi, T, mt, o, true);
    const int mw = W + w - 1;
    const Region all{0, H + h - 2, 0, W + w - 2};
    const Peak p = find_peak(m.data(), mw, all, 5);
    double best = -2;
    int by = -1, bx = -1;
    for (int y = 0; y <= all.y1; ++y)
      for (int x = 0; x <= all.x1; ++x)
        if (const double r = brute(I, mi, T, mt, y, x, o.eps, o.min_overlap); r > best) best = r, by = y, bx = x;
    ASSERT_EQ(p.y, by) << "rep " << rep;
    ASSERT_EQ(p.x, bx) << "rep " << rep;
    ASSERT_NEAR(p.value, best, 1e-5);
    same += by == rep % (H - h + 1) + h - 1 && bx == (rep * 7) % (W - w + 1) + w - 1;
  }
  EXPECT_GT(same, 50);  // the mask leaves the true placement the best in most cases
}

// A mask without an invalid pixel makes a side unmasked; a pair with no masked
// side is refused here (it takes the unmasked path).
TEST(Masked, AllValidMaskIsNoMask) {
  std::mt19937 rng(7);
  const Img I = test::random_img(10, 12, rng), T = test::random_img(4, 5, rng);
  Mask ones;
  ones.v.assign(I.v.size(), 3);
  detail::MaskedSide a(I.v.data(), ones.data(), 10, 12, false, true), b(I.v.data(), nullptr, 10, 12, false, true);
  EXPECT_FALSE(a.masked());
  EXPECT_EQ(a.count(), 120.0);
  EXPECT_EQ(a.mean(), b.mean());
  const Mask some = random_mask(4, 5, 0.5, rng);
  detail::MaskedSide t(T.v.data(), some.data(), 4, 5, true, false), tu(T.v.data(), nullptr, 4, 5, true, false);
  EXPECT_TRUE(t.masked());
  detail::MaskedBuffers buf;
  std::vector<float> out(13 * 16);
  EXPECT_THROW(detail::masked_region(a, tu, Region{0, 12, 0, 15}, Options{}, buf, out.data(), 16), std::logic_error);
  EXPECT_NO_THROW(detail::masked_region(a, t, Region{0, 12, 0, 15}, Options{}, buf, out.data(), 16));
}

// Through correlate(): masks without an invalid pixel give today's bits (map
// and peak); a masked pair gives masked_region's map, whatever the threads.
TEST(Masked, CorrelateRoutesPairs) {
  std::mt19937 rng(99);
  const Img I = test::random_img(31, 27, rng), T = test::cut(I, 5, 9, 7, 6);
  std::vector<std::uint8_t> ones_i(I.v.size(), 1), ones_t(T.v.size(), 255);
  Options o;
  o.min_overlap = 0.25;
  Workspace ws;
  std::vector<float> plain_map, ones_map;
  const PreparedImage plain(I.view(), false), ones(View{I.v.data(), I.h, I.w, ones_i.data()}, false);
  const PreparedTemplate tp(T.view(), true), tones(View{T.v.data(), T.h, T.w, ones_t.data()}, true);
  EXPECT_FALSE(ones.masked());
  EXPECT_FALSE(tones.masked());
  const Peak a = correlate(plain, tp, o, ws, &plain_map), b = correlate(ones, tones, o, ws, &ones_map);
  EXPECT_EQ(plain_map, ones_map);
  EXPECT_EQ(a.y, b.y);
  EXPECT_EQ(a.x, b.x);
  EXPECT_EQ(a.value, b.value);

  const Mask mi = random_mask(I.h, I.w, 0.7, rng);
  const PreparedImage masked(View{I.v.data(), I.h, I.w, mi.data()}, false);
  ASSERT_TRUE(masked.masked());
  std::vector<float> m;
  const Peak p = correlate(masked, tp, o, ws, &m);
  EXPECT_EQ(m, engine_map(I, mi, T, Mask{}, o, true));
  EXPECT_EQ(p.y, 5 + 7 - 1);  // the cut's placement
  EXPECT_EQ(p.x, 9 + 6 - 1);
  EXPECT_NEAR(p.value, 1.0f, 1e-6);
  const std::vector<std::pair<int, int>> pairs = {{0, 0}, {1, 0}, {0, 0}, {1, 0}};
  const PreparedImage* images[] = {&plain, &masked};
  const PreparedTemplate* templates[] = {&tp};
  for (int threads : {1, 3}) {
    const std::vector<Peak> q = correlate_pairs(images, templates, pairs, o, threads);
    EXPECT_EQ(q[1].value, p.value);
    EXPECT_EQ(q[3].value, p.value);
    EXPECT_EQ(q[0].value, a.value);
  }
}

// A template whose pairs all have a masked image takes the masked path only:
// the drivers compute no float spectrum for it (the float spectrum's bytes
// appear in PreparedTemplate::bytes() only once an unmasked pair needs it),
// and the results are those of correlate() pair by pair.
TEST(Masked, NoFloatSpectrumForTemplatesOfMaskedImagesOnly) {
  std::mt19937 rng(7);
  const Img I = test::random_img(40, 36, rng), T = test::cut(I, 6, 8, 9, 7);
  const Mask mi = random_mask(I.h, I.w, 0.8, rng);
  Options o;
  const auto [py, px] = fft_size(I.h, I.w, T.h, T.w, o);
  const std::size_t float_spectrum = std::size_t(py) * std::size_t(px / 2 + 1) * 2 * sizeof(float);
  const View masked_view{I.v.data(), I.h, I.w, mi.data()};
  const PreparedImage masked(masked_view, false), plain(I.view(), false);
  Workspace ws;
  const Peak want = correlate(masked, PreparedTemplate(T.view(), false), o, ws);
  const std::vector<std::pair<int, int>> pairs = {{0, 0}, {0, 0}};
  for (int threads : {1, 2}) {
    // correlate_pairs (prepared images) and correlate_image_groups (views).
    const PreparedTemplate t1(T.view(), true), t2(T.view(), true);
    const PreparedImage* images[] = {&masked};
    const PreparedTemplate* tp1[] = {&t1};
    const PreparedTemplate* tp2[] = {&t2};
    const std::vector<Peak> q1 = correlate_pairs(images, tp1, pairs, o, threads);
    const View views[] = {masked_view};
    const std::vector<Peak> q2 = correlate_image_groups(views, false, tp2, pairs, o, threads);
    for (const auto& q : {q1, q2})
      for (const Peak& p : q) {
        EXPECT_EQ(p.y, want.y);
        EXPECT_EQ(p.x, want.x);
        EXPECT_EQ(p.value, want.value);
      }
    for (const PreparedTemplate* t : {&t1, &t2}) {
      const std::size_t before = t->bytes();
      correlate(plain, *t, o, ws);  // an unmasked pair computes and keeps it
      EXPECT_EQ(t->bytes() - before, float_spectrum) << "threads " << threads;
    }
  }
}

// The GPU backend's hook (Workspace::set_masked_correlator): the correlations
// done elsewhere, here by a direct circular convolution in double, give the
// map of the FFTW path within rounding, and the same peak.
TEST(Masked, CorrelationsDoneElsewhere) {
  std::mt19937 rng(2024);
  const Img I = test::random_img(17, 15, rng), T = test::cut(I, 4, 3, 6, 5);
  const Mask mi = random_mask(17, 15, 0.8, rng), mt = random_mask(6, 5, 0.8, rng);
  Options o;
  o.min_overlap = 0.3;
  const PreparedImage im(View{I.v.data(), I.h, I.w, mi.data()}, false);
  const PreparedTemplate t(View{T.v.data(), T.h, T.w, mt.data()}, false);
  const PreparedTemplate tu(T.view(), false);
  int calls = 0;
  auto direct = [&calls](const double* a, const double* b, int py, int px, double* out) {
    ++calls;
    for (int y = 0; y < py; ++y)
      for (int x = 0; x < px; ++x) {
        double s = 0;
        for (int u = 0; u < py; ++u)
          for (int v = 0; v < px; ++v)
            s += a[std::size_t(u) * px + v] * b[std::size_t((y - u + py) % py) * px + std::size_t((x - v + px) % px)];
        out[std::size_t(y) * px + x] = s;
      }
  };
  for (const PreparedTemplate* tp : {&t, &tu}) {
    Workspace fftw, elsewhere;
    elsewhere.set_masked_correlator(direct);
    std::vector<float> m1, m2;
    const int before = calls;
    const Peak p1 = correlate(im, *tp, o, fftw, &m1), p2 = correlate(im, *tp, o, elsewhere, &m2);
    EXPECT_EQ(calls - before, tp == &t ? 6 : 3) << "correlations of a pair with two / one masked sides";
    ASSERT_EQ(m1.size(), m2.size());
    for (std::size_t i = 0; i < m1.size(); ++i) ASSERT_NEAR(m1[i], m2[i], 1e-9) << i;
    EXPECT_EQ(p1.y, p2.y);
    EXPECT_EQ(p1.x, p2.x);
    EXPECT_EQ(p2.y, 4 + 6 - 1);
    EXPECT_EQ(p2.x, 3 + 5 - 1);
  }
}

}  // namespace
}  // namespace tessera::xcorr
