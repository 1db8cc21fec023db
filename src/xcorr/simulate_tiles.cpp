#include "simulate_tiles.hpp"

#include <algorithm>
#include <cmath>
#include <random>
#include <stdexcept>
#include <string>

namespace tessera::xcorr {
namespace {

// Separable box blur of radius r (edges clamped), in place.
void box_blur(std::vector<float>& a, int ny, int nx, int r) {
  std::vector<double> line;
  auto pass = [&](int n_lines, int len, auto index) {
    line.resize(std::size_t(len));
    for (int l = 0; l < n_lines; ++l) {
      double s = 0;
      // Running sum over [i - r, i + r] with clamped indices.
      auto at = [&](int i) { return double(a[index(l, std::clamp(i, 0, len - 1))]); };
      for (int i = -r; i <= r; ++i) s += at(i);
      for (int i = 0; i < len; ++i) {
        line[std::size_t(i)] = s / (2 * r + 1);
        s += at(i + r + 1) - at(i - r);
      }
      for (int i = 0; i < len; ++i) a[index(l, i)] = float(line[std::size_t(i)]);
    }
  };
  pass(ny, nx, [nx](int y, int x) { return std::size_t(y) * nx + x; });
  pass(nx, ny, [nx](int x, int y) { return std::size_t(y) * nx + x; });
}

// The charging bands of TileSimOptions::charging, added to the images and
// marked in s.image_masks. Its own generator (seeded from the seed), so the
// tiles without charging are the same bits as with charging = 0.
void add_charging(TileSim& s, double fraction, std::uint64_t seed) {
  std::mt19937_64 rng(seed ^ 0x6368617267696e67ull);  // "charging"
  std::bernoulli_distribution charged(fraction);
  std::normal_distribution<double> streak(0.0, 1.0);
  const int bh = std::max(2, s.H / 8);
  std::uniform_int_distribution<int> top(0, s.H - bh);
  const std::size_t plane = std::size_t(s.H) * s.W;
  s.image_masks.assign(std::size_t(s.n) * plane, 1);
  for (int i = 0; i < s.n; ++i) {
    if (!charged(rng)) continue;
    const int y0 = top(rng);
    for (int y = y0; y < y0 + bh; ++y) {
      const double amplitude = 600.0 * (1.0 + 0.25 * streak(rng));  // 6 sd of the texture
      for (int x = 0; x < s.W; ++x) {
        const std::size_t at = std::size_t(i) * plane + std::size_t(y) * s.W + x;
        s.images[at] += float(amplitude * (1.0 - 0.6 * double(x) / double(s.W)));
        s.image_masks[at] = 0;
      }
    }
  }
}

}  // namespace

TileSim simulate_tiles(const TileSimOptions& o) {
  TileSim s;
  s.n = o.n_images;
  s.H = o.height;
  s.W = o.width;
  s.h = o.tpl_height > 0 ? o.tpl_height : std::max(1, o.height / 4);
  s.w = o.tpl_width > 0 ? o.tpl_width : std::max(1, o.width / 4);
  s.k = s.n;
  if (s.n < 1 || s.H < 2 || s.W < 2) throw std::invalid_argument("simulate xcorr: need at least one image of 2x2 or more");
  if (s.h > s.H || s.w > s.W) throw std::invalid_argument("simulate xcorr: the template is larger than a tile");
  if (!(o.overlap >= 0 && o.overlap < 1)) throw std::invalid_argument("simulate xcorr: --overlap must be in [0, 1)");
  if (!(o.noise >= 0)) throw std::invalid_argument("simulate xcorr: --noise must be >= 0");
  if (!(o.charging >= 0 && o.charging <= 1)) throw std::invalid_argument("simulate xcorr: --charging must be in [0, 1]");
  std::mt19937_64 rng(o.seed);
  const int gx = int(std::ceil(std::sqrt(double(s.n)))), gy = (s.n + gx - 1) / gx;
  const int step_y = std::max(1, int(std::lround(s.H * (1 - o.overlap)))),
            step_x = std::max(1, int(std::lround(s.W * (1 - o.overlap))));
  const int jit = std::max(0, std::min(step_y, step_x) / 32);
  const int SY = (gy - 1) * step_y + s.H + 2 * jit + 1, SX = (gx - 1) * step_x + s.W + 2 * jit + 1;
  // Specimen: fine grain plus coarse "cells" on an offset.
  std::normal_distribution<float> g(0.f, 1.f);
  std::vector<float> fine(std::size_t(SY) * SX), coarse(std::size_t(SY) * SX);
  for (float& v : fine) v = g(rng);
  for (float& v : coarse) v = g(rng);
  box_blur(fine, SY, SX, 2);
  box_blur(coarse, SY, SX, 9);
  std::vector<float> spec(std::size_t(SY) * SX);
  double m = 0, m2 = 0;
  for (std::size_t i = 0; i < spec.size(); ++i) {
    spec[i] = fine[i] + 3.0f * coarse[i];
    m += spec[i];
    m2 += double(spec[i]) * spec[i];
  }
  m /= double(spec.size());
  const double sd = std::sqrt(std::max(1e-30, m2 / double(spec.size()) - m * m));
  for (float& v : spec) v = float(1000.0 + 100.0 * (v - m) / sd);  // offset 1000, sd 100
  fine.clear();
  coarse.clear();

  std::uniform_int_distribution<int> dj(-jit, jit);
  s.positions.resize(std::size_t(s.n) * 2);
  for (int i = 0; i < s.n; ++i) {
    s.positions[std::size_t(2 * i)] = std::int64_t(jit + (i / gx) * step_y + dj(rng));
    s.positions[std::size_t(2 * i + 1)] = std::int64_t(jit + (i % gx) * step_x + dj(rng));
  }
  const std::size_t plane = std::size_t(s.H) * s.W;
  s.images.resize(std::size_t(s.n) * plane);
  std::normal_distribution<float> noise(0.f, float(100.0 * o.noise));
  for (int i = 0; i < s.n; ++i) {
    const std::int64_t py = s.positions[std::size_t(2 * i)], px = s.positions[std::size_t(2 * i + 1)];
    for (int y = 0; y < s.H; ++y)
      for (int x = 0; x < s.W; ++x)
        s.images[std::size_t(i) * plane + std::size_t(y) * s.W + x] =
            spec[std::size_t(py + y) * SX + std::size_t(px + x)] + noise(rng);
  }

  if (o.charging > 0) add_charging(s, o.charging, o.seed);

  // Templates: a crop of each tile's overlap strip (and of its mask).
  const int ov_y = s.H - step_y, ov_x = s.W - step_x;
  std::vector<std::int64_t> tpos(std::size_t(s.n) * 2);  // template top-left within its tile
  s.templates.resize(std::size_t(s.k) * s.h * s.w);
  for (int i = 0; i < s.n; ++i) {
    const bool right = i % gx != gx - 1 && i + 1 < s.n, below = i + gx < s.n;
    int cy = (s.H - s.h) / 2, cx = (s.W - s.w) / 2;
    if (right) cx = std::clamp(s.W - ov_x + (ov_x - s.w) / 2, 0, s.W - s.w);
    else if (below) cy = std::clamp(s.H - ov_y + (ov_y - s.h) / 2, 0, s.H - s.h);
    tpos[std::size_t(2 * i)] = cy;
    tpos[std::size_t(2 * i + 1)] = cx;
    for (int y = 0; y < s.h; ++y)
      for (int x = 0; x < s.w; ++x)
        s.templates[(std::size_t(i) * s.h + y) * s.w + x] =
            s.images[std::size_t(i) * plane + std::size_t(cy + y) * s.W + cx + x];
  }
  if (!s.image_masks.empty()) {
    s.template_masks.resize(s.templates.size());
    for (int i = 0; i < s.k; ++i)
      for (int y = 0; y < s.h; ++y)
        for (int x = 0; x < s.w; ++x)
          s.template_masks[(std::size_t(i) * s.h + y) * s.w + x] =
              s.image_masks[std::size_t(i) * plane + std::size_t(tpos[std::size_t(2 * i)] + y) * s.W +
                            std::size_t(tpos[std::size_t(2 * i + 1)] + x)];
  }
  // Matching pairs: own tile, then every tile that wholly contains the region.
  auto add = [&](std::int64_t img, std::int64_t tpl, std::int64_t ty, std::int64_t tx) {
    s.pairs.push_back(img);
    s.pairs.push_back(tpl);
    s.truth.push_back(ty);
    s.truth.push_back(tx);
  };
  for (int t = 0; t < s.k; ++t) {
    const std::int64_t gyy = s.positions[std::size_t(2 * t)] + tpos[std::size_t(2 * t)],
                       gxx = s.positions[std::size_t(2 * t + 1)] + tpos[std::size_t(2 * t + 1)];
    for (int b = 0; b < s.n; ++b) {
      const std::int64_t ty = gyy - s.positions[std::size_t(2 * b)], tx = gxx - s.positions[std::size_t(2 * b + 1)];
      if (ty < 0 || tx < 0 || ty + s.h > s.H || tx + s.w > s.W) continue;
      add(b, t, ty + s.h - 1, tx + s.w - 1);
    }
  }
  // Own-tile pairs first among the matching ones is not needed; order is by template.
  s.n_matching = std::int64_t(s.pairs.size() / 2);
  std::uniform_int_distribution<int> di(0, s.n - 1), dt(0, s.k - 1);
  for (std::int64_t p = s.n_matching; p < o.n_pairs; ++p) add(di(rng), dt(rng), -1, -1);
  if (o.n_pairs > 0 && o.n_pairs < s.n_matching) {
    s.pairs.resize(std::size_t(o.n_pairs) * 2);
    s.truth.resize(std::size_t(o.n_pairs) * 2);
    s.n_matching = o.n_pairs;
  }
  return s;
}

}  // namespace tessera::xcorr
