// --top K --min-distance D through correlate(): the pair's list is
// detail::top_peaks (tested against the definition in test_zncc_peak.cpp) run
// on the searched region of the pair's own map, padded with (-1, -1, NaN) to K
// entries, and its first entry is the Peak. The reference list is computed
// here from Correlator::map (the full map); with a crop or valid mode
// correlate() transforms at a smaller size, so values there agree to rounding
// and the coordinates exactly, while with full_map it searches the full map's
// very bits.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/zncc_peak.hpp"
#include "xcorr/peak_search.hpp"
#include "xcorr/xcorr.hpp"
#include "xcorr_test_util.hpp"

using namespace tessera::xcorr;
using namespace tessera::xcorr::test;

namespace {

using tessera::core::ZnccBest;

std::vector<ZnccBest> expected_top(const std::vector<float>& full, int mw, Region r, int k, int d) {
  std::vector<ZnccBest> e = tessera::xcorr::detail::top_peaks(full.data(), mw, r, k, d);
  e.resize(std::size_t(k), ZnccBest{std::numeric_limits<float>::quiet_NaN(), -1, -1});
  return e;
}

void expect_same_entry(const ZnccBest& a, const ZnccBest& b, bool bits, const std::string& where) {
  EXPECT_EQ(a.y, b.y) << where;
  EXPECT_EQ(a.x, b.x) << where;
  if (std::isnan(b.value)) EXPECT_TRUE(std::isnan(a.value)) << where;
  else if (bits) EXPECT_EQ(std::memcmp(&a.value, &b.value, sizeof(float)), 0) << where;
  else EXPECT_NEAR(a.value, b.value, 1e-5) << where;
}

}  // namespace

TEST(Xcorr, TopListIsTheCandidatesOfTheSearchedRegion) {
  std::mt19937 rng(77);
  const Img im = random_img(31, 27, rng), tp = random_img(7, 9, rng);
  const int mh = 31 + 7 - 1, mw = 27 + 9 - 1;
  struct Case {
    int crop_y, crop_x;
    Mode mode;
    int k, d;
  };
  for (const Case c : {Case{0, 0, Mode::full, 6, 5}, Case{0, 0, Mode::full, 9, 0}, Case{4, 7, Mode::full, 5, 2},
                       Case{0, 0, Mode::valid, 4, 3}, Case{3, 1, Mode::valid, 7, 1},
                       // K beyond the number of local maxima: every one, to the region's edges, then missing.
                       Case{4, 7, Mode::full, 400, 0}, Case{0, 0, Mode::valid, 300, 0}}) {
    Options o;
    o.crop_y = c.crop_y, o.crop_x = c.crop_x, o.mode = c.mode, o.top_k = c.k, o.min_distance = c.d;
    const std::string where = "crop " + std::to_string(c.crop_y) + "," + std::to_string(c.crop_x) +
                              (c.mode == Mode::valid ? " valid" : " full") + " K " + std::to_string(c.k);
    Correlator corr(o);
    corr.set_image(im.view());
    const std::vector<float> full = corr.map(tp.view());
    ASSERT_EQ(full.size(), std::size_t(mh) * mw);
    const Region r = search_region(im.h, im.w, tp.h, tp.w, o);
    const std::vector<ZnccBest> want = expected_top(full, mw, r, c.k, c.d);
    ASSERT_GE(want.size(), 1u);
    ASSERT_GE(want[0].y, 0) << where;  // random noise has local maxima
    const PreparedImage pimg(im.view(), false);
    const PreparedTemplate ptpl(tp.view(), false);
    Workspace ws;
    // With full_map, the list comes from the map handed back: the same bits.
    std::vector<ZnccBest> got(std::size_t(c.k));
    std::vector<float> m;
    correlate(pimg, ptpl, o, ws, &m, got);
    ASSERT_EQ(m, full);
    for (std::size_t i = 0; i < got.size(); ++i) expect_same_entry(got[i], want[i], true, where + " (full map)");
    // Without: the searched region alone (a smaller transform with a crop or
    // valid mode); the first entry is the Peak, bit for bit.
    std::fill(got.begin(), got.end(), ZnccBest{0.5f, 99, 99});
    const Peak p = correlate(pimg, ptpl, o, ws, nullptr, got);
    const bool whole = r.y0 == 0 && r.x0 == 0 && r.y1 == mh - 1 && r.x1 == mw - 1;
    for (std::size_t i = 0; i < got.size(); ++i) expect_same_entry(got[i], want[i], whole, where);
    EXPECT_EQ(got[0].y, p.y) << where;
    EXPECT_EQ(got[0].x, p.x) << where;
    EXPECT_EQ(std::memcmp(&got[0].value, &p.value, sizeof(float)), 0) << where;
    // Every entry lies inside the searched region (or is missing).
    for (const ZnccBest& e : got) {
      if (e.y >= 0) {
        EXPECT_TRUE(e.y >= r.y0 && e.y <= r.y1 && e.x >= r.x0 && e.x <= r.x1) << where;
      }
    }
    if (c.k >= 300) {
      EXPECT_EQ(got.back().y, -1) << where << ": expected fewer maxima than K";
    }
  }
}

TEST(Xcorr, TopListPadsMissingEntriesAndFollowsThePairsOverThreads) {
  std::mt19937 rng(5);
  // Valid mode of a 6x6 image and a 5x5 template: a 2x2 region, in which only
  // the maximum is a local maximum (distinct values): one entry, four missing.
  const Img small = random_img(6, 6, rng), small_t = random_img(5, 5, rng);
  Options o;
  o.mode = Mode::valid;
  o.top_k = 5;
  o.min_distance = 0;
  const PreparedImage pimg(small.view(), false);
  const PreparedTemplate ptpl(small_t.view(), false);
  Workspace ws;
  std::vector<ZnccBest> got(5, ZnccBest{0.5f, 99, 99});
  const Peak p = correlate(pimg, ptpl, o, ws, nullptr, got);
  EXPECT_EQ(got[0].y, p.y);
  EXPECT_EQ(got[0].x, p.x);
  for (std::size_t i = 1; i < got.size(); ++i) {
    EXPECT_EQ(got[i].y, -1);
    EXPECT_EQ(got[i].x, -1);
    EXPECT_TRUE(std::isnan(got[i].value));
  }
  EXPECT_EQ(missing_top_peak().y, -1);
  EXPECT_TRUE(std::isnan(missing_top_peak().value));

  // correlate_pairs and correlate_image_groups: pair i's list at [i K, (i+1) K),
  // the same bits as one pair at a time, whatever the threads.
  std::vector<Img> imgs, tpls;
  for (int i = 0; i < 3; ++i) imgs.push_back(random_img(30, 33, rng));
  for (int i = 0; i < 2; ++i) tpls.push_back(random_img(8, 6, rng));
  const std::vector<std::pair<int, int>> pairs{{0, 0}, {0, 1}, {1, 1}, {2, 0}, {2, 1}};
  o = Options{};
  o.crop_y = 2;
  o.top_k = 4;
  o.min_distance = 3;
  std::vector<std::unique_ptr<PreparedImage>> pi;
  std::vector<const PreparedImage*> ip;
  std::vector<View> views;
  for (const Img& m : imgs) {
    pi.push_back(std::make_unique<PreparedImage>(m.view(), false));
    ip.push_back(pi.back().get());
    views.push_back(m.view());
  }
  std::vector<std::unique_ptr<PreparedTemplate>> pt;
  std::vector<const PreparedTemplate*> tpp;
  for (const Img& m : tpls) {
    pt.push_back(std::make_unique<PreparedTemplate>(m.view(), true));
    tpp.push_back(pt.back().get());
  }
  std::vector<ZnccBest> ref(pairs.size() * 4);
  for (std::size_t i = 0; i < pairs.size(); ++i)
    correlate(*ip[std::size_t(pairs[i].first)], *tpp[std::size_t(pairs[i].second)], o, ws, nullptr,
              std::span<ZnccBest>(ref).subspan(i * 4, 4));
  for (int threads : {1, 3}) {
    std::vector<ZnccBest> a, b;
    correlate_pairs(ip, tpp, pairs, o, threads, {}, &a);
    correlate_image_groups(views, false, tpp, pairs, o, threads, {}, &b);
    ASSERT_EQ(a.size(), ref.size());
    ASSERT_EQ(b.size(), ref.size());
    for (std::size_t i = 0; i < ref.size(); ++i) {
      expect_same_entry(a[i], ref[i], true, "correlate_pairs, threads " + std::to_string(threads));
      expect_same_entry(b[i], ref[i], true, "correlate_image_groups, threads " + std::to_string(threads));
    }
  }
  // Without --top, no list.
  o.top_k = 0;
  std::vector<ZnccBest> none{ZnccBest{}};
  correlate_pairs(ip, tpp, pairs, o, 1, {}, &none);
  EXPECT_TRUE(none.empty());
  o.top_k = -1;
  EXPECT_THROW(validate(o), std::invalid_argument);
  o.top_k = 2;
  o.min_distance = -1;
  EXPECT_THROW(validate(o), std::invalid_argument);
}
