// Test images shared by the xcorr suites.
#pragma once

#include <random>
#include <vector>

#include "xcorr/xcorr.hpp"

namespace tessera::xcorr::test {

struct Img {
  int h, w;
  std::vector<float> v;
  View view() const { return {v.data(), h, w}; }
  float& at(int y, int x) { return v[std::size_t(y) * w + x]; }
};

inline Img random_img(int h, int w, std::mt19937& rng, float lo = 0.f, float hi = 1.f) {
  std::uniform_real_distribution<float> d(lo, hi);
  Img m{h, w, std::vector<float>(std::size_t(h) * w)};
  for (float& f : m.v) f = d(rng);
  return m;
}

inline Img cut(const Img& im, int y0, int x0, int h, int w) {
  Img t{h, w, std::vector<float>(std::size_t(h) * w)};
  for (int i = 0; i < h; ++i)
    for (int j = 0; j < w; ++j) t.v[std::size_t(i) * w + j] = im.v[std::size_t(y0 + i) * im.w + x0 + j];
  return t;
}

}  // namespace tessera::xcorr::test
