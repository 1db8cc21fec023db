// The library's xcorr (src/api/xcorr.hpp): the command's outputs bit for bit
// from the same arrays in memory, any element type and strides, the bad-input
// messages, progress and cancellation.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "api_test_util.hpp"
#include "api/xcorr.hpp"

namespace tessera {
namespace {

using ::testing::HasSubstr;
using test::read_dataset;
using test::same_bits;

// A pair set read back from a file written by `tessera simulate xcorr`.
struct PairSet {
  std::vector<float> images, templates;
  std::vector<std::int64_t> pairs;
  std::vector<std::int64_t> ishape, tshape, pshape;

  api::Array3 image_view() const { return api::Array3::contiguous(images.data(), {ishape[0], ishape[1], ishape[2]}); }
  api::Array3 template_view() const {
    return api::Array3::contiguous(templates.data(), {tshape[0], tshape[1], tshape[2]});
  }
  api::Array2 pair_view() const { return api::Array2::contiguous(pairs.data(), {pshape[0], pshape[1]}); }
};

PairSet read_set(const std::string& file) {
  PairSet s;
  s.images = read_dataset<float>(file, "/images", &s.ishape);
  s.templates = read_dataset<float>(file, "/templates", &s.tshape);
  s.pairs = read_dataset<std::int64_t>(file, "/pairs", &s.pshape);
  return s;
}

// A small random set: 3 images 19x23 near 50, 4 templates 5x7, two of them cut
// from the images so that some pairs have a clear match.
PairSet small_set(std::uint32_t seed = 5) {
  PairSet s;
  s.ishape = {3, 19, 23};
  s.tshape = {4, 5, 7};
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  s.images.resize(3 * 19 * 23);
  for (float& v : s.images) v = 50 + 10 * u(rng);
  s.templates.resize(4 * 5 * 7);
  for (float& v : s.templates) v = u(rng);
  for (int y = 0; y < 5; ++y)
    for (int x = 0; x < 7; ++x) {
      s.templates[std::size_t(y * 7 + x)] = s.images[std::size_t(1 * 19 * 23 + (4 + y) * 23 + 6 + x)];
      s.templates[std::size_t(2 * 35 + y * 7 + x)] = s.images[std::size_t(2 * 19 * 23 + (10 + y) * 23 + 3 + x)];
    }
  s.pairs = {0, 1, 1, 0, 2, 2, 0, 3, 2, 0, 1, 3};
  s.pshape = {6, 2};
  return s;
}

void expect_same_as_file(const api::XcorrResult& r, const std::string& out, bool subpixel) {
  EXPECT_TRUE(same_bits(r.coords, read_dataset<std::int64_t>(out, "/coords"))) << out;
  EXPECT_TRUE(same_bits(r.peaks, read_dataset<float>(out, "/peaks"))) << out;
  EXPECT_TRUE(same_bits(r.quality, read_dataset<float>(out, "/quality"))) << out;
  if (subpixel) {
    EXPECT_TRUE(same_bits(r.subpixel, read_dataset<double>(out, "/subpixel"))) << out;
  }
}

void expect_same_result(const api::XcorrResult& a, const api::XcorrResult& b) {
  EXPECT_EQ(a.n_pairs, b.n_pairs);
  EXPECT_TRUE(same_bits(a.coords, b.coords));
  EXPECT_TRUE(same_bits(a.peaks, b.peaks));
  EXPECT_TRUE(same_bits(a.quality, b.quality));
  EXPECT_TRUE(same_bits(a.subpixel, b.subpixel));
}

// The message of the std::invalid_argument that f throws ("" when none).
template <class F>
std::string invalid_argument_of(F&& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

// ---- (a) the command's outputs, bit for bit ---------------------------------------

// Each test its own scratch directory (ctest may run them in parallel).
class ApiXcorrVsCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = test::scratch_dir(std::string("xcorr_") +
                             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    ASSERT_EQ(test::run_tessera("simulate xcorr -o " + in() + " --seed 8"), 0);
  }
  void TearDown() override { test::remove_scratch_dir(dir_); }
  std::string in() const { return dir_ + "/in.h5"; }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  std::string dir_;
};

TEST_F(ApiXcorrVsCommand, FullModeWithSubpixel) {
  const std::string out = path("full.h5");
  ASSERT_EQ(test::run_tessera("xcorr " + in() + " -o " + out + " --subpixel --quiet --backend cpu"), 0);
  const PairSet s = read_set(in());
  ASSERT_EQ(s.pshape[1], 2);
  const api::XcorrResult r = api::xcorr(s.image_view(), s.template_view(), s.pair_view(), {});
  ASSERT_EQ(r.n_pairs, s.pshape[0]);
  expect_same_as_file(r, out, true);
  // Independently of the command: the simulation's known matches are found.
  const auto truth = read_dataset<std::int64_t>(in(), "/truth/coords");
  ASSERT_EQ(truth.size(), r.coords.size());
  int known = 0;
  for (std::size_t p = 0; p < truth.size() / 2; ++p) {
    if (truth[2 * p] < 0) continue;
    ++known;
    EXPECT_EQ(r.coords[2 * p], truth[2 * p]) << "pair " << p;
    EXPECT_EQ(r.coords[2 * p + 1], truth[2 * p + 1]) << "pair " << p;
    EXPECT_GT(r.peaks[p], 0.5f) << "pair " << p;
  }
  EXPECT_GT(known, 0);
}

TEST_F(ApiXcorrVsCommand, ValidModeCropNormalizeInput) {
  const std::string out = path("valid.h5");
  ASSERT_EQ(test::run_tessera("xcorr " + in() + " -o " + out +
                              " --mode valid --crop 3,5 --normalize-input --exclusion 3 --eps 1e-4 "
                              "--subpixel --quiet --backend cpu"),
            0);
  const PairSet s = read_set(in());
  api::XcorrOptions o;
  o.mode = "valid";
  o.crop_y = 3;
  o.crop_x = 5;
  o.normalize_input = true;
  o.exclusion = 3;
  o.eps = 1e-4;
  const api::XcorrResult r = api::xcorr(s.image_view(), s.template_view(), s.pair_view(), o);
  expect_same_as_file(r, out, true);
  // Valid mode: every peak is a full-overlap placement, inside the crop.
  const std::int64_t H = s.ishape[1], W = s.ishape[2], h = s.tshape[1], w = s.tshape[2];
  for (std::size_t p = 0; p < std::size_t(r.n_pairs); ++p) {
    EXPECT_GE(r.coords[2 * p], std::max<std::int64_t>(3, h - 1));
    EXPECT_LE(r.coords[2 * p], std::min<std::int64_t>(H + h - 2 - 3, H - 1));
    EXPECT_GE(r.coords[2 * p + 1], std::max<std::int64_t>(5, w - 1));
    EXPECT_LE(r.coords[2 * p + 1], std::min<std::int64_t>(W + w - 2 - 5, W - 1));
  }
}

TEST_F(ApiXcorrVsCommand, SmallMemoryBudgetManyBatchesAndThreads) {
  // The command cuts the pairs into batches of a few images and runs 3 threads;
  // the library takes them in one call on 1 thread: the same bits.
  const std::string out = path("batches.h5");
  ASSERT_EQ(test::run_tessera("xcorr " + in() + " -o " + out +
                              " --memory-budget 48M --threads 3 --quiet --backend cpu"),
            0);
  const PairSet s = read_set(in());
  api::XcorrOptions o;
  o.threads = 1;
  const api::XcorrResult r = api::xcorr(s.image_view(), s.template_view(), s.pair_view(), o);
  expect_same_as_file(r, out, false);
}

// ---- (b) element types and strides ------------------------------------------------

TEST(ApiXcorr, TypedInputsEqualTheirFloatValues) {
  // Integer images: as uint16, int32 and float64 arrays they hold the same
  // values as a float copy, so they give the same bits.
  PairSet s = small_set();
  std::vector<std::uint16_t> u16(s.images.size());
  std::vector<std::int32_t> i32(s.images.size());
  std::vector<double> f64(s.images.size());
  for (std::size_t i = 0; i < s.images.size(); ++i) {
    s.images[i] = std::round(s.images[i] * 100.0f);  // 5000 .. 6000: exact in all four types
    u16[i] = std::uint16_t(s.images[i]);
    i32[i] = std::int32_t(s.images[i]);
    f64[i] = s.images[i];
  }
  const std::array<std::int64_t, 3> shape{s.ishape[0], s.ishape[1], s.ishape[2]};
  const auto ref = api::xcorr(s.image_view(), s.template_view(), s.pair_view(), {});
  expect_same_result(ref, api::xcorr(api::Array3::contiguous(u16.data(), shape), s.template_view(), s.pair_view(), {}));
  expect_same_result(ref, api::xcorr(api::Array3::contiguous(i32.data(), shape), s.template_view(), s.pair_view(), {}));
  expect_same_result(ref, api::xcorr(api::Array3::contiguous(f64.data(), shape), s.template_view(), s.pair_view(), {}));
  // The cut-out templates are found where they were cut.
  EXPECT_EQ(ref.coords[2], 4 + 5 - 1);  // pair 1: image 1, template 0
  EXPECT_EQ(ref.coords[3], 6 + 7 - 1);
  EXPECT_EQ(ref.coords[4], 10 + 5 - 1);  // pair 2: image 2, template 2
  EXPECT_EQ(ref.coords[5], 3 + 7 - 1);
}

TEST(ApiXcorr, StridedViewsEqualContiguousCopies) {
  const PairSet s = small_set();
  const auto ref = api::xcorr(s.image_view(), s.template_view(), s.pair_view(), {});
  const std::int64_t n = s.ishape[0], H = s.ishape[1], W = s.ishape[2];
  // Images in every other column of a buffer twice as wide; the columns in
  // between are NaN, which the call would refuse if it read them.
  std::vector<float> wide(std::size_t(n * H * 2 * W), std::numeric_limits<float>::quiet_NaN());
  for (std::int64_t i = 0; i < n * H * W; ++i) wide[std::size_t(2 * i)] = s.images[std::size_t(i)];
  api::Array3 images;
  images.data = wide.data();
  images.type = api::DType::float32;
  images.shape = {n, H, W};
  images.strides = {std::int64_t(H * 2 * W * sizeof(float)), std::int64_t(2 * W * sizeof(float)),
                    std::int64_t(2 * sizeof(float))};
  // Templates in reverse frame order, viewed with a negative frame stride.
  const std::int64_t k = s.tshape[0], plane = s.tshape[1] * s.tshape[2];
  std::vector<float> reversed(s.templates.size());
  for (std::int64_t t = 0; t < k; ++t)
    std::copy_n(s.templates.begin() + t * plane, plane, reversed.begin() + (k - 1 - t) * plane);
  api::Array3 templates = api::Array3::contiguous(reversed.data() + (k - 1) * plane, {k, s.tshape[1], s.tshape[2]});
  templates.strides[0] = -std::int64_t(plane * sizeof(float));
  // Pairs as int32 columns: [2][p] in memory, viewed as [p][2].
  const std::int64_t p = s.pshape[0];
  std::vector<std::int32_t> columns(std::size_t(2 * p));
  for (std::int64_t i = 0; i < p; ++i) {
    columns[std::size_t(i)] = std::int32_t(s.pairs[std::size_t(2 * i)]);
    columns[std::size_t(p + i)] = std::int32_t(s.pairs[std::size_t(2 * i + 1)]);
  }
  api::Array2 pairs;
  pairs.data = columns.data();
  pairs.type = api::DType::int32;
  pairs.shape = {p, 2};
  pairs.strides = {std::int64_t(sizeof(std::int32_t)), std::int64_t(p * sizeof(std::int32_t))};
  expect_same_result(ref, api::xcorr(images, templates, pairs, {}));
}

TEST(ApiXcorr, ResultsDoNotDependOnThreadsOrPairOrder) {
  const PairSet s = small_set();
  api::XcorrOptions one;
  one.threads = 1;
  api::XcorrOptions four;
  four.threads = 4;
  const auto a = api::xcorr(s.image_view(), s.template_view(), s.pair_view(), one);
  expect_same_result(a, api::xcorr(s.image_view(), s.template_view(), s.pair_view(), four));
  // The pair list reversed: each pair's result moves with it.
  std::vector<std::int64_t> rev(s.pairs.size());
  const std::size_t p = s.pairs.size() / 2;
  for (std::size_t i = 0; i < p; ++i) {
    rev[2 * i] = s.pairs[2 * (p - 1 - i)];
    rev[2 * i + 1] = s.pairs[2 * (p - 1 - i) + 1];
  }
  const auto b = api::xcorr(s.image_view(), s.template_view(),
                            api::Array2::contiguous(rev.data(), {std::int64_t(p), 2}), one);
  for (std::size_t i = 0; i < p; ++i) {
    const std::size_t j = p - 1 - i;
    EXPECT_EQ(b.coords[2 * i], a.coords[2 * j]);
    EXPECT_EQ(b.coords[2 * i + 1], a.coords[2 * j + 1]);
    EXPECT_TRUE(same_bits(std::vector<float>{b.peaks[i]}, std::vector<float>{a.peaks[j]}));
  }
}

TEST(ApiXcorr, ColumnsHoldWhatTheirNamesSay) {
  // Each column recomputed from the pair's full map (src/xcorr's xcorr_map):
  // the peak is the map's largest value at coords, sharpness the peak minus
  // the mean of its neighbours, peak_ratio the peak over the best value
  // farther than the exclusion, subpixel within half a placement of coords.
  const PairSet s = small_set();
  api::XcorrOptions o;
  o.exclusion = 2;
  const auto r = api::xcorr(s.image_view(), s.template_view(), s.pair_view(), o);
  const int H = int(s.ishape[1]), W = int(s.ishape[2]), h = int(s.tshape[1]), w = int(s.tshape[2]);
  const int mh = H + h - 1, mw = W + w - 1;
  for (std::size_t p = 0; p < std::size_t(r.n_pairs); ++p) {
    const xcorr::View image{s.images.data() + s.pairs[2 * p] * H * W, H, W};
    const xcorr::View templ{s.templates.data() + s.pairs[2 * p + 1] * h * w, h, w};
    const std::vector<float> map = xcorr::xcorr_map(image, templ, {});
    const auto y = int(r.coords[2 * p]), x = int(r.coords[2 * p + 1]);
    ASSERT_TRUE(y >= 0 && y < mh && x >= 0 && x < mw) << "pair " << p;
    const float peak = map[std::size_t(y * mw + x)];
    EXPECT_FLOAT_EQ(r.peaks[p], peak) << "pair " << p;
    EXPECT_FLOAT_EQ(r.peaks[p], *std::max_element(map.begin(), map.end())) << "pair " << p;
    double sum = 0, second = -std::numeric_limits<double>::infinity();
    int n = 0;
    for (int yy = 0; yy < mh; ++yy)
      for (int xx = 0; xx < mw; ++xx) {
        const int d = std::max(std::abs(yy - y), std::abs(xx - x));
        if (d == 1) sum += map[std::size_t(yy * mw + xx)], ++n;
        if (d > o.exclusion) second = std::max(second, double(map[std::size_t(yy * mw + xx)]));
      }
    EXPECT_NEAR(r.quality[2 * p], peak - sum / n, 1e-5) << "pair " << p;
    if (second > 0) EXPECT_NEAR(r.quality[2 * p + 1], peak / second, 1e-4) << "pair " << p;
    else EXPECT_EQ(r.quality[2 * p + 1], std::numeric_limits<float>::infinity()) << "pair " << p;
    EXPECT_LE(std::abs(r.subpixel[2 * p] - y), 0.5) << "pair " << p;
    EXPECT_LE(std::abs(r.subpixel[2 * p + 1] - x), 0.5) << "pair " << p;
  }
}

// ---- (c) bad options and bad input ----------------------------------------------

TEST(ApiXcorr, OptionsIsValidMessages) {
  std::string why = "unchanged";
  EXPECT_TRUE(api::XcorrOptions{}.IsValid(&why));
  EXPECT_EQ(why, "");
  EXPECT_TRUE(api::XcorrOptions{}.IsValid(nullptr));
  struct Case {
    void (*set)(api::XcorrOptions&);
    const char* message;
  };
  const Case cases[] = {
      {[](api::XcorrOptions& o) { o.crop_y = -1; }, "--crop must not be negative, got '-1,0'"},
      {[](api::XcorrOptions& o) { o.crop_x = -2; }, "--crop must not be negative, got '0,-2'"},
      {[](api::XcorrOptions& o) { o.eps = -1; }, "--eps must be finite and >= 0"},
      {[](api::XcorrOptions& o) { o.eps = std::numeric_limits<double>::quiet_NaN(); }, "--eps must be finite and >= 0"},
      {[](api::XcorrOptions& o) { o.eps = std::numeric_limits<double>::infinity(); }, "--eps must be finite and >= 0"},
      {[](api::XcorrOptions& o) { o.mode = "same"; }, "--mode must be full or valid, got 'same'"},
      {[](api::XcorrOptions& o) { o.exclusion = -1; }, "--exclusion must be >= 0"},
      {[](api::XcorrOptions& o) { o.threads = -1; }, "--threads must be >= 0"},
      {[](api::XcorrOptions& o) { o.backend = "gpu"; }, "--backend must be auto, cpu or cuda, got 'gpu'"},
  };
  const PairSet s = small_set();
  for (const Case& c : cases) {
    api::XcorrOptions o;
    c.set(o);
    EXPECT_FALSE(o.IsValid(&why)) << c.message;
    EXPECT_EQ(why, c.message);
    // The call refuses them before any work, with the same message.
    EXPECT_EQ(invalid_argument_of([&] { api::xcorr(s.image_view(), s.template_view(), s.pair_view(), o); }),
              c.message);
  }
}

TEST(ApiXcorr, PairIndicesOutOfRange) {
  const PairSet s = small_set();
  auto message = [&](std::vector<std::int64_t> pairs) {
    return invalid_argument_of([&] {
      api::xcorr(s.image_view(), s.template_view(),
                 api::Array2::contiguous(pairs.data(), {std::int64_t(pairs.size() / 2), 2}), {});
    });
  };
  EXPECT_EQ(message({0, 1, 3, 0}), "pairs: pair 1 names image 3, outside [0, 3)");
  EXPECT_EQ(message({0, 1, -1, 2}), "pairs: pair 1 names image -1, outside [0, 3)");
  EXPECT_EQ(message({0, 9}), "pairs: pair 0 names template 9, outside [0, 4)");
}

TEST(ApiXcorr, PairListShapeAndType) {
  const PairSet s = small_set();
  std::vector<std::int64_t> three(9, 0);
  EXPECT_THAT(invalid_argument_of([&] {
                api::xcorr(s.image_view(), s.template_view(), api::Array2::contiguous(three.data(), {3, 3}), {});
              }),
              HasSubstr("pairs: must be [p, 2] (image index, template index), got [3, 3]"));
  std::vector<double> floats{0.0, 1.0};
  EXPECT_EQ(invalid_argument_of([&] {
              api::xcorr(s.image_view(), s.template_view(), api::Array2::contiguous(floats.data(), {1, 2}), {});
            }),
            "pairs: index arrays must hold integers, got float64");
  EXPECT_THAT(invalid_argument_of([&] { api::xcorr(s.image_view(), s.template_view(), api::Array2{}, {}); }),
              HasSubstr("pairs: missing"));
}

TEST(ApiXcorr, TemplatesLargerThanImages) {
  const PairSet s = small_set();
  std::vector<float> tall(2 * 30 * 5, 1.0f), wide(2 * 5 * 30, 1.0f);
  std::vector<std::int64_t> pairs{0, 1, 1, 0};
  const auto pv = api::Array2::contiguous(pairs.data(), {2, 2});
  EXPECT_EQ(invalid_argument_of([&] {
              api::xcorr(s.image_view(), api::Array3::contiguous(tall.data(), {2, 30, 5}), pv, {});
            }),
            "templates 30x5 are larger than the images 19x23 (as normxcorr2, each template must fit inside its image)");
  EXPECT_THAT(invalid_argument_of([&] {
                api::xcorr(s.image_view(), api::Array3::contiguous(wide.data(), {2, 5, 30}), pv, {});
              }),
              HasSubstr("templates 5x30 are larger than the images 19x23"));
}

TEST(ApiXcorr, NonFiniteValuesNamed) {
  PairSet s = small_set();
  s.images[std::size_t(2 * 19 * 23 + 3 * 23 + 4)] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(invalid_argument_of([&] { api::xcorr(s.image_view(), s.template_view(), s.pair_view(), {}); }),
            "images: image 2 has a non-finite value (nan) at (3, 4)");
  PairSet t = small_set();
  t.templates[std::size_t(1 * 35)] = -std::numeric_limits<float>::infinity();
  EXPECT_EQ(invalid_argument_of([&] { api::xcorr(t.image_view(), t.template_view(), t.pair_view(), {}); }),
            "templates: template 1 has a non-finite value (-inf) at (0, 0)");
  // A non-finite value in a frame no pair uses is never read.
  PairSet u = small_set();
  std::vector<std::int64_t> pairs{0, 1, 1, 0};
  u.images[std::size_t(2 * 19 * 23)] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_NO_THROW(api::xcorr(u.image_view(), u.template_view(), api::Array2::contiguous(pairs.data(), {2, 2}), {}));
}

TEST(ApiXcorr, CropLeavingNothing) {
  const PairSet s = small_set();
  api::XcorrOptions o;
  o.crop_y = 40;
  EXPECT_THAT(invalid_argument_of([&] { api::xcorr(s.image_view(), s.template_view(), s.pair_view(), o); }),
              HasSubstr("--crop: xcorr: crop 40,0 leaves no placement of the 23x29 map to search"));
}

TEST(ApiXcorr, EmptyOrMissingImages) {
  const PairSet s = small_set();
  EXPECT_THAT(invalid_argument_of([&] { api::xcorr(api::Array3{}, s.template_view(), s.pair_view(), {}); }),
              HasSubstr("images: missing"));
  EXPECT_THAT(invalid_argument_of([&] {
                api::xcorr(api::Array3::contiguous(s.images.data(), {3, 0, 23}), s.template_view(), s.pair_view(), {});
              }),
              HasSubstr("images: is empty"));
}

TEST(ApiXcorr, BackendCudaRunsOrSaysWhyNot) {
  // With a GPU: coordinates as the CPU's. Without one (or a build without
  // CUDA): a one-line refusal, and auto falls back to the CPU's bits.
  const PairSet s = small_set();
  const auto cpu = api::xcorr(s.image_view(), s.template_view(), s.pair_view(), {});
  api::XcorrOptions o;
  o.backend = "cuda";
  try {
    const auto gpu = api::xcorr(s.image_view(), s.template_view(), s.pair_view(), o);
    EXPECT_EQ(gpu.coords, cpu.coords);
    for (std::size_t p = 0; p < cpu.peaks.size(); ++p) EXPECT_NEAR(gpu.peaks[p], cpu.peaks[p], 1e-5);
  } catch (const std::invalid_argument& e) {
    EXPECT_THAT(std::string(e.what()), ::testing::StartsWith("--backend cuda: "));
    o.backend = "auto";
    expect_same_result(cpu, api::xcorr(s.image_view(), s.template_view(), s.pair_view(), o));
  }
}

// ---- (d) progress and cancellation ------------------------------------------------

TEST(ApiXcorr, ProgressCountsEveryPair) {
  const PairSet s = small_set();
  api::XcorrOptions o;
  o.threads = 3;
  std::int64_t total = 0, calls = 0;  // the library serialises the calls
  o.progress = [&](std::int64_t n) {
    total += n;
    ++calls;
  };
  api::xcorr(s.image_view(), s.template_view(), s.pair_view(), o);
  EXPECT_EQ(total, s.pshape[0]);
  EXPECT_GE(calls, 1);
}

TEST(ApiXcorr, CancelBeforeTheCall) {
  const PairSet s = small_set();
  std::atomic<bool> cancel{true};
  api::XcorrOptions o;
  o.cancel = &cancel;
  std::int64_t reported = 0;
  o.progress = [&](std::int64_t n) { reported += n; };
  EXPECT_THROW(api::xcorr(s.image_view(), s.template_view(), s.pair_view(), o), api::Cancelled);
  EXPECT_EQ(reported, 0);
  cancel = false;
  EXPECT_EQ(api::xcorr(s.image_view(), s.template_view(), s.pair_view(), o).n_pairs, s.pshape[0]);
}

TEST(ApiXcorr, CancelDuringTheCall) {
  // The flag is raised by the first progress report: the call stops before
  // the rest of the pairs are reported.
  PairSet s = small_set();
  std::vector<std::int64_t> many;
  for (int r = 0; r < 20; ++r) many.insert(many.end(), s.pairs.begin(), s.pairs.end());
  std::atomic<bool> cancel{false};
  api::XcorrOptions o;
  o.threads = 1;
  o.cancel = &cancel;
  std::int64_t reported = 0;
  o.progress = [&](std::int64_t n) {
    reported += n;
    cancel = true;
  };
  EXPECT_THROW(api::xcorr(s.image_view(), s.template_view(),
                          api::Array2::contiguous(many.data(), {std::int64_t(many.size() / 2), 2}), o),
               api::Cancelled);
  EXPECT_EQ(reported, 1);
}

}  // namespace
}  // namespace tessera
