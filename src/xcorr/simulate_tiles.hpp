// A tile-stitching data set with known offsets, for `tessera simulate xcorr`,
// tests and benchmarks: a textured specimen (smoothed noise at two scales on a
// large offset, as an EM section) is cut into a grid of overlapping tiles at
// jittered positions, each tile with its own noise. Template k is a crop of
// tile k's overlap strip (right strip; bottom strip in the last column; centre
// for the last tile). Pairs: each template with its own tile (an exact match),
// then with every other tile that wholly contains its region (a noisy match),
// then random (image, template) pairs up to the requested count. Pure and
// deterministic in the seed.
//
// With charging > 0, that fraction of the tiles gets a charging band (issue 15):
// a horizontal band of H/8 rows at a random height, brightened by a ramp along x
// (6 texture standard deviations at the left, 40 % of that at the right) with
// streaks (each row's amplitude varies), the same pattern in every tile. The
// band of a template lines up with the band of any charged tile better than the
// specimen does, so plain ZNCC finds false matches; image_masks and
// template_masks mark the bands invalid (0) and the masked ZNCC finds the truth.
// Templates are cut after charging, so a template crossing a band carries it.
#pragma once

#include <cstdint>
#include <vector>

namespace tessera::xcorr {

struct TileSimOptions {
  int n_images = 16;
  int height = 512, width = 512;  // tile size
  int tpl_height = 0, tpl_width = 0;  // 0: a quarter of the tile
  double overlap = 0.3;  // fraction of the tile shared with the next one
  double noise = 0.2;    // per-tile noise, in units of the texture's standard deviation
  std::int64_t n_pairs = 0;  // total pairs; 0: only the matching pairs
  double charging = 0;   // fraction of the tiles with a charging band, [0, 1]
  std::uint64_t seed = 1;
};

struct TileSim {
  int n = 0, H = 0, W = 0, k = 0, h = 0, w = 0;
  std::vector<float> images;      // [n, H, W]
  std::vector<float> templates;   // [k, h, w]
  std::vector<std::int64_t> pairs;      // [p, 2] image, template
  std::vector<std::int64_t> truth;      // [p, 2] expected full-map peak (y, x); -1 unknown
  std::vector<std::int64_t> positions;  // [n, 2] tile top-left in the specimen
  std::int64_t n_matching = 0;          // the first n_matching pairs have a truth
  // With charging > 0: 1 = valid, 0 = in a charging band; [n, H, W] and [k, h, w].
  std::vector<std::uint8_t> image_masks, template_masks;
};

// Throws std::invalid_argument for impossible sizes (template larger than a tile,
// overlap outside [0, 1), fewer than 1 image).
TileSim simulate_tiles(const TileSimOptions& options);

}  // namespace tessera::xcorr
