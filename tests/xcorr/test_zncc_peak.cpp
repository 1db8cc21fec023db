// The GPU xcorr backend's per-thread code run on the host (no GPU, no nvcc):
// the kernels of cuda/xcorr_kernels.cuh are thin loops over core/zncc_tables.hpp,
// core::zncc_placement and core/zncc_peak.hpp; here the same loops, the same 32x8 blocks and the
// same reduction trees (warp shuffle-down, then warps, then blocks) run on the
// CPU, and the result must equal the CPU backend's, bit for bit, from the
// same numerators.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/zncc.hpp"
#include "core/zncc_peak.hpp"
#include "xcorr/peak_search.hpp"
#include "core/zncc_tables.hpp"
#include "xcorr/xcorr.hpp"

namespace {

using namespace tessera;
using core::ZnccBest;

constexpr int kBX = 32, kBY = 8, kThreads = kBX * kBY;  // as cuda/xcorr_kernels.cuh

// A warp's shuffle-down tree: lane i takes lane i+off, or itself past the end.
template <class T, class F> T warp_reduce(std::vector<T> lane, F combine) {
  for (int off = 16; off > 0; off >>= 1) {
    std::vector<T> next = lane;
    for (int i = 0; i < 32; ++i) next[i] = combine(lane[i], i + off < 32 ? lane[i + off] : lane[i]);
    lane = next;
  }
  return lane[0];
}
// block_best / block_max: each warp, then warp 0's result combined with the others in order.
template <class T, class F> T block_reduce(const std::vector<T>& threads, F combine) {
  T b = warp_reduce(std::vector<T>(threads.begin(), threads.begin() + 32), combine);
  for (int w = 1; w < kThreads / 32; ++w)
    b = combine(b, warp_reduce(std::vector<T>(threads.begin() + 32 * w, threads.begin() + 32 * (w + 1)), combine));
  return b;
}
// reduce_best / peak_quality: thread t strides over the partials, then block_reduce.
template <class T, class F> T reduce_partials(const std::vector<T>& partial, T none, F combine) {
  std::vector<T> t(kThreads, none);
  for (std::size_t i = 0; i < partial.size(); ++i) t[i % kThreads] = combine(t[i % kThreads], partial[i]);
  return block_reduce(t, combine);
}

bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }
bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

// The GPU pipeline after the C2R, on the host: `map` holds the numerator
// (row stride `stride`) and receives R over the region, as the device slot.
// With im and t null, `map` holds R already: the search alone.
xcorr::Peak emulate_gpu(const core::ZnccImageTables* im, const core::ZnccTemplateStats* t,
                        std::vector<float>& map, long long stride, xcorr::Region rr, double eps,
                        int exclusion) {
  const core::ZnccRegion r{rr.y0, rr.y1, rr.x0, rr.x1};
  const int gx = (r.x1 - r.x0 + kBX) / kBX, gy = (r.y1 - r.y0 + kBY) / kBY;
  auto best_combine = [](ZnccBest a, ZnccBest b) { return core::zncc_best_combine(a, b); };
  auto max_combine = [](float a, float b) { return core::zncc_max(a, b); };
  // normalise_argmax
  std::vector<ZnccBest> partial;
  for (int by = 0; by < gy; ++by)
    for (int bx = 0; bx < gx; ++bx) {
      std::vector<ZnccBest> th(kThreads, core::zncc_best_none());
      for (int ty = 0; ty < kBY; ++ty)
        for (int tx = 0; tx < kBX; ++tx) {
          const int x = r.x0 + bx * kBX + tx, y = r.y0 + by * kBY + ty;
          if (y > r.y1 || x > r.x1) continue;
          float& p = map[std::size_t(y * stride + x)];
          if (im) p = core::zncc_placement(*im, *t, y, x, p, eps);
          th[std::size_t(ty * kBX + tx)] = {p, y, x};
        }
      partial.push_back(block_reduce(th, best_combine));
    }
  // reduce_best
  const ZnccBest best = reduce_partials(partial, core::zncc_best_none(), best_combine);
  // second_best
  std::vector<float> second_partial;
  for (int by = 0; by < gy; ++by)
    for (int bx = 0; bx < gx; ++bx) {
      std::vector<float> th(kThreads, -HUGE_VALF);
      for (int ty = 0; ty < kBY; ++ty)
        for (int tx = 0; tx < kBX; ++tx) {
          const int x = r.x0 + bx * kBX + tx, y = r.y0 + by * kBY + ty;
          if (y <= r.y1 && x <= r.x1 && !core::zncc_excluded(y, x, best, exclusion))
            th[std::size_t(ty * kBX + tx)] = map[std::size_t(y * stride + x)];
        }
      second_partial.push_back(block_reduce(th, max_combine));
    }
  // peak_quality
  const float second = reduce_partials(second_partial, -HUGE_VALF, max_combine);
  const core::ZnccPeakShape s = core::zncc_peak_shape(core::ZnccMapView{map.data(), stride}, r, best);
  return {best.y, best.x, best.value, s.sub_y, s.sub_x, s.sharpness, core::zncc_peak_ratio(best.value, second)};
}

void expect_same(const xcorr::Peak& a, const xcorr::Peak& b, const std::string& what) {
  EXPECT_EQ(a.y, b.y) << what;
  EXPECT_EQ(a.x, b.x) << what;
  EXPECT_TRUE(same_bits(a.value, b.value)) << what << ": " << a.value << " vs " << b.value;
  EXPECT_TRUE(same_bits(a.sub_y, b.sub_y)) << what << ": " << a.sub_y << " vs " << b.sub_y;
  EXPECT_TRUE(same_bits(a.sub_x, b.sub_x)) << what << ": " << a.sub_x << " vs " << b.sub_x;
  EXPECT_TRUE(same_bits(a.sharpness, b.sharpness)) << what << ": " << a.sharpness << " vs " << b.sharpness;
  EXPECT_TRUE(same_bits(a.peak_ratio, b.peak_ratio)) << what << ": " << a.peak_ratio << " vs " << b.peak_ratio;
}

struct Case {
  std::string name;
  std::vector<float> img, tpl;
  int H, W, h, w;
};

std::vector<Case> cases() {
  std::mt19937 g(7);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  std::vector<Case> out;
  {  // a textured image on an offset, the template cut from it (a clear peak)
    Case c{"cut", {}, {}, 45, 70, 9, 13};
    c.img.resize(std::size_t(c.H) * c.W);
    for (float& v : c.img) v = 100.0f + 10.0f * u(g);
    for (int i = 0; i < c.h; ++i)
      for (int j = 0; j < c.w; ++j) c.tpl.push_back(c.img[std::size_t(i + 20) * c.W + j + 31]);
    out.push_back(c);
  }
  {  // random, no clear match
    Case c{"random", {}, {}, 37, 29, 6, 11};
    c.img.resize(std::size_t(c.H) * c.W);
    c.tpl.resize(std::size_t(c.h) * c.w);
    for (float& v : c.img) v = u(g);
    for (float& v : c.tpl) v = u(g) - 0.5f;
    out.push_back(c);
  }
  {  // a flat image with a bright block: flat windows (exactly 0) and the padding
    Case c{"flat", {}, {}, 33, 33, 5, 5};
    c.img.assign(std::size_t(c.H) * c.W, 7.0f);
    for (int y = 10; y < 14; ++y)
      for (int x = 20; x < 25; ++x) c.img[std::size_t(y) * c.W + x] = 9.0f;
    c.tpl.resize(25);
    for (float& v : c.tpl) v = u(g);
    out.push_back(c);
  }
  {  // a constant template: R = 0 everywhere, every placement ties
    Case c{"constant_template", {}, {}, 24, 31, 4, 6};
    c.img.resize(std::size_t(c.H) * c.W);
    for (float& v : c.img) v = u(g);
    c.tpl.assign(24, 3.0f);
    out.push_back(c);
  }
  return out;
}

std::vector<xcorr::Options> option_sets() {
  std::vector<xcorr::Options> o(7);
  o[1].mode = xcorr::Mode::valid;
  o[2].crop_y = 3, o[2].crop_x = 1;
  o[3].exclusion = 0;
  o[4].exclusion = 1000;  // nothing outside: ratio +inf
  o[5].normalize_input = true;
  o[6].mode = xcorr::Mode::valid, o[6].crop_y = 4, o[6].crop_x = 8, o[6].exclusion = 2;
  return o;
}

// The kernel body and reductions, from the CPU's own numerators, against the
// CPU backend's peak search over the CPU's map: every field, same bits.
TEST(ZnccPeakHost, KernelBodyAndReductionsMatchCpuBits) {
  for (const Case& c : cases())
    for (const xcorr::Options& o : option_sets()) {
      const std::string what = c.name + " mode " + std::to_string(int(o.mode)) + " crop " +
                               std::to_string(o.crop_y) + "," + std::to_string(o.crop_x) + " excl " +
                               std::to_string(o.exclusion) + " norm " + std::to_string(o.normalize_input);
      xcorr::PreparedImage im(xcorr::View{c.img.data(), c.H, c.W}, o.normalize_input);
      xcorr::PreparedTemplate t(xcorr::View{c.tpl.data(), c.h, c.w}, false);
      xcorr::Workspace ws;
      const int mh = c.H + c.h - 1, mw = c.W + c.w - 1;
      const xcorr::Region r = xcorr::search_region(c.H, c.W, c.h, c.w, o);
      std::vector<float> gpu_map = xcorr::numerator_map(im, t, ws);  // full-size transform
      const core::ZnccImageTables tables = xcorr::zncc_tables(im);
      const core::ZnccTemplateStats stats = xcorr::zncc_stats(t);
      const xcorr::Peak gpu = emulate_gpu(&tables, &stats, gpu_map, mw, r, o.eps, o.exclusion);
      // The CPU's map from the same full-size transform, and its peak search.
      xcorr::Correlator cor(o);
      cor.set_image(xcorr::View{c.img.data(), c.H, c.W});
      const std::vector<float> cpu_map = cor.map(xcorr::View{c.tpl.data(), c.h, c.w});
      for (int y = r.y0; y <= r.y1; ++y)
        for (int x = r.x0; x <= r.x1; ++x)
          ASSERT_TRUE(same_bits(gpu_map[std::size_t(y) * mw + x], cpu_map[std::size_t(y) * mw + x]))
              << what << " at " << y << "," << x;
      expect_same(gpu, xcorr::find_peak(cpu_map.data(), mw, r, o.exclusion), what);
      // Where the CPU backend transforms at the full size too, its end result.
      if (xcorr::fft_size(c.H, c.W, c.h, c.w, o) == xcorr::fft_size(c.H, c.W, c.h, c.w, xcorr::Options{}))
        expect_same(gpu, cor.peak(xcorr::View{c.tpl.data(), c.h, c.w}), what + " (xcorr_peak)");
      (void)mh;
    }
}

// The tables the device builds (row pass, then column pass) have the bits of
// the CPU's (PreparedImage, zncc_tables), for every case and normalize_input.
TEST(ZnccPeakHost, DeviceTablePassesMatchCpuBits) {
  for (const Case& c : cases())
    for (bool norm : {false, true}) {
      xcorr::PreparedImage im(xcorr::View{c.img.data(), c.H, c.W}, norm);
      const core::ZnccImageTables cpu = xcorr::zncc_tables(im);
      const xcorr::ImageData d = xcorr::image_data(im);
      ASSERT_EQ(d.height, c.H);
      ASSERT_EQ(d.width, c.W);
      EXPECT_TRUE(same_bits(d.centre, cpu.centre));
      EXPECT_TRUE(same_bits(d.flat_bound, cpu.flat_bound));
      const std::size_t n = std::size_t(c.H + 1) * std::size_t(c.W + 1);
      std::vector<double> s1(n, 0.0), s2(n, 0.0);
      std::vector<std::int32_t> nz(n, 0), dh(n, 0), dv(n, 0);
      const core::ZnccTablesOut t{s1.data(), s2.data(), nz.data(), dh.data(), dv.data()};
      for (int y = c.H - 1; y >= 0; --y) core::zncc_tables_row(d.pixels.data(), c.W, y, t);  // any order
      for (int x = c.W; x >= 0; --x) core::zncc_tables_col(c.H, c.W, x, t);
      for (std::size_t i = 0; i < n; ++i) {
        ASSERT_TRUE(same_bits(s1[i], cpu.s1[i])) << c.name << " s1 at " << i;
        ASSERT_TRUE(same_bits(s2[i], cpu.s2[i])) << c.name << " s2 at " << i;
        ASSERT_EQ(nz[i], cpu.nonzero[i]) << c.name << " at " << i;
        ASSERT_EQ(dh[i], cpu.diff_h[i]) << c.name << " at " << i;
        ASSERT_EQ(dv[i], cpu.diff_v[i]) << c.name << " at " << i;
      }
    }
}

// The rule of the peak search, written out here: NaN ranks above every number
// (+0 and -0 rank equal, as do all NaNs), and of equal ranks the first in
// row-major order wins; c is in row-major order.
bool ranks_above(float a, float b) { return std::isnan(a) ? !std::isnan(b) : !std::isnan(b) && a > b; }
ZnccBest row_major_scan(const std::vector<ZnccBest>& c) {
  ZnccBest best = c[0];
  for (const ZnccBest& b : c)
    if (ranks_above(b.value, best.value)) best = b;
  return best;
}

// The argmax combine: any tree over any order gives the row-major scan's
// candidate, with its bits; so does core::zncc_row_best along a row.
TEST(ZnccPeakHost, ArgmaxCombineIsOrderFree) {
  std::mt19937 g(3);
  std::uniform_int_distribution<int> pick(0, 5);
  const float values[6] = {0.5f, -0.0f, 0.0f, 0.25f, -1.0f, std::numeric_limits<float>::quiet_NaN()};
  for (int trial = 0; trial < 300; ++trial) {
    const int ny = 7, nx = 9;
    const int kinds = trial % 3 == 2 ? 6 : 5;  // NaN in every third trial
    std::vector<ZnccBest> c;
    for (int y = 0; y < ny; ++y)
      for (int x = 0; x < nx; ++x)
        c.push_back({values[pick(g) % kinds] * (trial % 3 == 0 ? 0.0f : 1.0f), y, x});
    const ZnccBest scan = row_major_scan(c);
    std::vector<ZnccBest> s = c;
    std::shuffle(s.begin(), s.end(), g);
    while (s.size() > 1) {  // random pairwise tree
      std::vector<ZnccBest> n;
      for (std::size_t i = 0; i + 1 < s.size(); i += 2)
        n.push_back(g() % 2 ? core::zncc_best_combine(s[i], s[i + 1]) : core::zncc_best_combine(s[i + 1], s[i]));
      if (s.size() % 2) n.push_back(s.back());
      s = n;
    }
    const ZnccBest tree = core::zncc_best_combine(s[0], core::zncc_best_none());
    EXPECT_EQ(tree.y, scan.y);
    EXPECT_EQ(tree.x, scan.x);
    EXPECT_TRUE(same_bits(tree.value, scan.value));
    for (int y = 0; y < ny; ++y) {
      std::vector<float> row;
      for (int x = 0; x < nx; ++x) row.push_back(c[std::size_t(y * nx + x)].value);
      const ZnccBest got = core::zncc_row_best(row.data(), y, 2, nx - 1);
      const ZnccBest want = row_major_scan(std::vector<ZnccBest>(c.begin() + y * nx + 2, c.begin() + (y + 1) * nx));
      EXPECT_EQ(got.x, want.x);
      EXPECT_TRUE(same_bits(got.value, want.value));
    }
  }
}

// A map of few distinct levels (ties everywhere, +0 and -0), in some trials
// with NaN inside the searched region, and always with NaN and larger values
// outside it.
std::vector<float> tie_map(std::mt19937& g, int mh, int mw, xcorr::Region r, int trial) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float levels[4] = {0.0f, -0.0f, 0.25f, -0.5f};
  std::uniform_int_distribution<int> level(0, trial % 3 == 0 ? 1 : 3), row(r.y0, r.y1), col(r.x0, r.x1);
  std::vector<float> map(std::size_t(mh) * mw);
  for (float& v : map) v = levels[level(g)];
  auto at = [&](int y, int x) -> float& { return map[std::size_t(y) * mw + x]; };
  for (int i = 0; i < 3 && trial % 3 != 0; ++i) at(row(g), col(g)) = 0.75f;
  for (int i = 0; i <= trial % 2 && trial % 3 == 2; ++i) at(row(g), col(g)) = nan;
  at(r.y0 - 1, r.x0 + 1) = nan, at(r.y1 + 1, r.x1) = 2.0f, at(r.y0 + 1, r.x1 + 1) = nan, at(r.y1, r.x0 - 1) = 2.0f;
  return map;
}

// The peak search of both backends, the CPU's (vectorised row maxima, then the
// first row and column) and the GPU's (block trees), pick the candidate of
// the rule written out in ranks_above, with every field's bits equal, on rows
// that take every path of the vectorised scans.
TEST(ZnccPeakHost, PeakSearchFollowsOneRuleOnBothBackends) {
  std::mt19937 g(11);
  const int mh = 23, mw = 80;
  const xcorr::Region r{2, 20, 3, 73};  // 71 columns: 2 x 32 + 7
  for (int trial = 0; trial < 90; ++trial) {
    const std::vector<float> map = tie_map(g, mh, mw, r, trial);
    std::vector<ZnccBest> region;
    for (int y = r.y0; y <= r.y1; ++y)
      for (int x = r.x0; x <= r.x1; ++x) region.push_back({map[std::size_t(y) * mw + x], y, x});
    const ZnccBest want = row_major_scan(region);
    const int exclusion = trial % 4 == 3 ? 1000 : trial % 4;
    const xcorr::Peak cpu = xcorr::find_peak(map.data(), mw, r, exclusion);
    std::vector<float> gpu_map = map;
    const xcorr::Peak gpu = emulate_gpu(nullptr, nullptr, gpu_map, mw, r, 1e-6, exclusion);
    const std::string what = "trial " + std::to_string(trial);
    EXPECT_EQ(cpu.y, want.y) << what;
    EXPECT_EQ(cpu.x, want.x) << what;
    EXPECT_TRUE(same_bits(cpu.value, want.value)) << what;
    expect_same(gpu, cpu, what);
  }
}

}  // namespace

// top_peaks (the --top candidates) against their definition written out:
// every placement of the region that no neighbour inside the region ranks
// above, ordered by rank then row-major, kept greedily when farther than D
// (Chebyshev) from all kept before. Maps with many ties (values on a grid of
// eight levels), a NaN, sub-regions, K from 1 to many, D from 0 to the map's size.
TEST(TopPeaks, AreTheGreedyDefinitionOnMapsWithTies) {
  using tessera::core::ZnccBest;
  std::mt19937 rng(31);
  std::uniform_int_distribution<int> level(0, 7);
  for (int trial = 0; trial < 40; ++trial) {
    const int mh = 5 + trial % 13, mw = 4 + (trial * 7) % 17, stride = mw + 3;
    std::vector<float> map(std::size_t(mh) * stride, -9.0f);
    for (int y = 0; y < mh; ++y)
      for (int x = 0; x < mw; ++x) map[std::size_t(y) * stride + x] = float(level(rng)) / 7.0f - 0.5f;
    if (trial % 5 == 0) map[std::size_t(mh / 2) * stride + mw / 2] = std::numeric_limits<float>::quiet_NaN();
    const tessera::xcorr::Region r{trial % 3, mh - 1 - trial % 2, trial % 4 % mw, mw - 1};
    const int k = 1 + trial % 9, d = trial % 4 == 3 ? 100 : trial % 4;
    auto at = [&](int y, int x) { return map[std::size_t(y) * stride + x]; };
    std::vector<ZnccBest> cand;
    for (int y = r.y0; y <= r.y1; ++y)
      for (int x = r.x0; x <= r.x1; ++x) {
        bool local = true;
        for (int ny = std::max(r.y0, y - 1); ny <= std::min(r.y1, y + 1); ++ny)
          for (int nx = std::max(r.x0, x - 1); nx <= std::min(r.x1, x + 1); ++nx)
            if ((ny != y || nx != x) && tessera::core::zncc_ranks_above(at(ny, nx), at(y, x))) local = false;
        if (local) cand.push_back({at(y, x), y, x});
      }
    std::stable_sort(cand.begin(), cand.end(), [](const ZnccBest& a, const ZnccBest& b) {
      return tessera::core::zncc_ranks_above(a.value, b.value);  // stable: row-major among equal ranks
    });
    std::vector<ZnccBest> want;
    for (const ZnccBest& c : cand) {
      if (int(want.size()) == k) break;
      bool far = true;
      for (const ZnccBest& q : want) far = far && std::max(std::abs(q.y - c.y), std::abs(q.x - c.x)) > d;
      if (far) want.push_back(c);
    }
    const auto got = tessera::xcorr::detail::top_peaks(map.data(), stride, r, k, d);
    ASSERT_EQ(got.size(), want.size()) << "trial " << trial;
    for (std::size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].y, want[i].y) << "trial " << trial << " #" << i;
      EXPECT_EQ(got[i].x, want[i].x) << "trial " << trial << " #" << i;
      EXPECT_TRUE(got[i].value == want[i].value || (std::isnan(got[i].value) && std::isnan(want[i].value)));
    }
    std::vector<float> rowmax;
    const auto peak = tessera::xcorr::detail::find_peak_rows(map.data(), stride, r, 2, rowmax, false);
    EXPECT_EQ(got.front().y, peak.y) << "trial " << trial;  // the first is the peak
    EXPECT_EQ(got.front().x, peak.x) << "trial " << trial;
  }
}
