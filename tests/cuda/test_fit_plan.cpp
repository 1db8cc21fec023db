// The chunk plan of the CUDA fit backend (cuda/fit_plan.hpp): a pure function,
// tested without a GPU. What it must guarantee: every spectrum in exactly one
// chunk, buffers within the device and pinned budgets, offsets that never
// overflow whatever the fit count (Gpufit returns zeros at 10^7 fits), and
// several chunks per stream on a large batch so that copies overlap kernels.
#include <gtest/gtest.h>

#include <climits>
#include <cstdint>
#include <stdexcept>

#include "cuda/fit_plan.hpp"

namespace {

namespace tc = tessera::cuda;

constexpr std::size_t GiB = std::size_t(1) << 30;

// Case B of tools/bench: 8 dips + offset, 241 points, on an 80 GB device.
tc::FitChunkRequest case_b(std::int64_t n_pix) {
  tc::FitChunkRequest r;
  r.n_pix = n_pix;
  r.n_points = 241;
  r.n_params = 25;
  r.pixel_major = true;
  r.free_device_bytes = 79 * GiB;
  r.min_chunk = 132 * 2048;  // H100: SMs x threads per SM
  return r;
}

// The invariants every plan keeps.
void expect_valid(const tc::FitChunkRequest& r, const tc::FitChunkPlan& p) {
  if (r.n_pix == 0) {
    EXPECT_EQ(p.n_chunks, 0);
    return;
  }
  ASSERT_GE(p.chunk, 1);
  EXPECT_LE(p.chunk, tc::fit_max_chunk_spectra);
  EXPECT_LE(p.chunk, r.n_pix);
  if (r.max_chunk > 0) {
    EXPECT_LE(p.chunk, r.max_chunk);
  }
  EXPECT_GE(p.slots, 1);
  EXPECT_LE(p.slots, r.streams);
  EXPECT_LE(std::int64_t(p.slots), p.n_chunks);
  // Every spectrum in exactly one chunk, in order.
  EXPECT_GE(p.n_chunks * p.chunk, r.n_pix);
  EXPECT_LT((p.n_chunks - 1) * p.chunk, r.n_pix);
  EXPECT_EQ(p.begin(0, r.n_pix), 0);
  EXPECT_EQ(p.begin(p.n_chunks - 1, r.n_pix) + p.size(p.n_chunks - 1, r.n_pix), r.n_pix);
  EXPECT_GE(p.size(p.n_chunks - 1, r.n_pix), 1);
  // Device buffers of all slots within half the free memory.
  EXPECT_LE(double(p.chunk) * p.slots * p.device_bytes_per_spectrum,
            double(r.free_device_bytes) / 2);
  // The kernel's grid and thread index stay int.
  EXPECT_LE(p.chunk + 127, std::int64_t(INT_MAX));
}

TEST(FitChunkPlan, EmptyBatch) {
  const auto r = case_b(0);
  const auto p = tc::plan_fit_chunks(r);
  EXPECT_EQ(p.n_chunks, 0);
  EXPECT_EQ(p.slots, 0);
}

TEST(FitChunkPlan, SmallBatchIsOneChunk) {
  for (std::int64_t n : {1, 7, 1000, 100'000}) {
    const auto r = case_b(n);
    const auto p = tc::plan_fit_chunks(r);
    expect_valid(r, p);
    EXPECT_EQ(p.n_chunks, 1) << n;
    EXPECT_EQ(p.chunk, n);
    EXPECT_EQ(p.slots, 1);
  }
}

// A batch many times what the device runs at once: at least two chunks per
// stream, none smaller than min_chunk (so each kernel still fills the device).
TEST(FitChunkPlan, LargeBatchOverlapsCopiesAndKernels) {
  auto r = case_b(20'000'000);
  r.min_chunk = 50'000;  // 8 peaks: 384 resident threads x 132 SMs
  const auto p = tc::plan_fit_chunks(r);
  expect_valid(r, p);
  EXPECT_EQ(p.slots, tc::fit_streams);
  EXPECT_GE(p.n_chunks, 2 * tc::fit_streams);
  EXPECT_GE(p.chunk, r.min_chunk);
  // Pinned staging within its budget.
  EXPECT_LE(double(p.chunk) * p.slots * p.pinned_bytes_per_spectrum, double(r.pinned_budget));
}

// Fit counts far past where int offsets break (10^7 x 241 points > 2^31
// elements): the plan keeps every chunk within int, and the 64-bit begin()
// reaches the end of the batch.
TEST(FitChunkPlan, NoFitCountOverflows) {
  for (std::int64_t n : {std::int64_t(10'000'000), std::int64_t(10'000'001),
                         std::int64_t(1) << 31, (std::int64_t(1) << 31) + 1,
                         std::int64_t(100'000'000'000)}) {
    auto r = case_b(n);
    r.pinned_budget = std::size_t(1) << 50;  // the chunk limit, not the pinned one
    r.free_device_bytes = std::size_t(1) << 50;
    r.n_points = 16;
    r.n_params = 4;
    const auto p = tc::plan_fit_chunks(r);
    expect_valid(r, p);
    // Two chunks per stream, or 2^30 spectra at most.
    const std::int64_t share = (n + 2 * tc::fit_streams - 1) / (2 * tc::fit_streams);
    EXPECT_EQ(p.chunk, std::min(share, tc::fit_max_chunk_spectra)) << n;
    EXPECT_EQ(p.begin(p.n_chunks - 1, n) + p.size(p.n_chunks - 1, n), n);
  }
}

// Each limit, when it is the smallest, sets the chunk.
TEST(FitChunkPlan, EachLimitBinds) {
  auto r = case_b(50'000'000);
  r.max_chunk = 1000;
  auto p = tc::plan_fit_chunks(r);
  expect_valid(r, p);
  EXPECT_EQ(p.chunk, 1000);

  r = case_b(50'000'000);
  r.free_device_bytes = 64 * (std::size_t(1) << 20);  // 64 MiB free
  p = tc::plan_fit_chunks(r);
  expect_valid(r, p);
  EXPECT_EQ(p.chunk, std::int64_t(r.free_device_bytes / 2 / p.device_bytes_per_spectrum) / 2);

  r = case_b(50'000'000);
  r.pinned_budget = 16 * (std::size_t(1) << 20);
  p = tc::plan_fit_chunks(r);
  expect_valid(r, p);
  EXPECT_EQ(p.chunk, std::int64_t(r.pinned_budget / p.pinned_bytes_per_spectrum) / 2);
}

TEST(FitChunkPlan, BytesPerSpectrum) {
  tc::FitChunkRequest r;
  r.n_points = 100;
  r.n_params = 7;
  // y, then start / params / sigma, chi2, state, iterations.
  EXPECT_EQ(tc::fit_device_bytes_per_spectrum(r), 400u + 84u + 12u);
  EXPECT_EQ(tc::fit_pinned_bytes_per_spectrum(r), 400u + 84u + 12u);
  r.weights = true;
  r.mask = true;
  r.pixel_major = true;  // a device staging buffer for the transpose
  EXPECT_EQ(tc::fit_device_bytes_per_spectrum(r), 1200u + 84u + 12u + 1u);
  EXPECT_EQ(tc::fit_pinned_bytes_per_spectrum(r), 800u + 84u + 12u + 1u);
}

// Too little memory for two slots: one slot, no overlap, still correct.
TEST(FitChunkPlan, OneSlotWhenTwoDoNotFit) {
  auto r = case_b(10);
  r.free_device_bytes = 2 * tc::fit_device_bytes_per_spectrum(r) + 1;  // one spectrum in half
  const auto p = tc::plan_fit_chunks(r);
  expect_valid(r, p);
  EXPECT_EQ(p.chunk, 1);
  EXPECT_EQ(p.n_chunks, 10);
  EXPECT_EQ(p.slots, 1);
}

TEST(FitChunkPlan, BadRequests) {
  auto r = case_b(10);
  r.free_device_bytes = 100;
  EXPECT_THROW((void)tc::plan_fit_chunks(r), std::runtime_error);
  r = case_b(-1);
  EXPECT_THROW((void)tc::plan_fit_chunks(r), std::invalid_argument);
  r = case_b(10);
  r.n_points = 0;
  EXPECT_THROW((void)tc::plan_fit_chunks(r), std::invalid_argument);
  r.n_points = tc::fit_max_points + 1;
  EXPECT_THROW((void)tc::plan_fit_chunks(r), std::invalid_argument);
  r = case_b(10);
  r.streams = 0;
  EXPECT_THROW((void)tc::plan_fit_chunks(r), std::invalid_argument);
}

}  // namespace
