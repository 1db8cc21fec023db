// How src/xcorr plans its FFTs (FFTW, float for the unmasked numerator, double
// for the masked sums). By default FFTW_ESTIMATE: no timing, so every process
// anywhere makes the same plan for a size and the bits never depend on the
// rank, the run or the machine's load. FFTW_MEASURE plans are faster (1280^2 on
// a Xeon with AVX-512: float inverse 4.9 -> 4.0 ms, double 9.1 -> 5.6 ms) but
// chosen by timing, so two processes may choose differently; they are used
// only through wisdom: one process measures (measure_fft_wisdom), every
// process imports the same text (import_fft_wisdom) and, for the options with
// Options::fft_from_wisdom, makes plans from that wisdom alone
// (FFTW_WISDOM_ONLY), so all make the same plans. The wisdom names the SIMD
// codelets it chose: a CPU without them cannot use it (import_fft_wisdom says
// so) rather than silently planning another way.
#pragma once

#include <fftw3.h>

#include <mutex>
#include <span>
#include <string>
#include <utility>

namespace tessera::xcorr {

struct FftWisdom {
  std::string single, dbl;  // fftwf_ and fftw_export_wisdom_to_string
};

// Imports `start` (may be empty), plans the forward and inverse transforms of
// each padded size (rows, columns) with FFTW_MEASURE (float, and double too
// with with_double; sizes already in `start` cost nothing), and returns the
// wisdom. Throws std::invalid_argument when `start` is not FFTW wisdom.
FftWisdom measure_fft_wisdom(std::span<const std::pair<int, int>> sizes, bool with_double,
                             const FftWisdom& start);

// Whether w (imported now, replacing this process's wisdom) holds the plans
// of `sizes` (and their double transforms with with_double): then measuring
// again would add nothing. Throws std::invalid_argument when w is not wisdom.
bool fft_wisdom_covers(const FftWisdom& w, std::span<const std::pair<int, int>> sizes, bool with_double);

// Replaces this process's wisdom by w; "" when the plans of `sizes` (and of
// their double transforms with with_double) can be made from it, else the
// reason (w unreadable, or made for other sizes or another kind of CPU).
// Plans made before (either way) stay as they were.
std::string import_fft_wisdom(const FftWisdom& w, std::span<const std::pair<int, int>> sizes, bool with_double);

// The FFTW planner flags of new plans: FFTW_ESTIMATE, or FFTW_MEASURE |
// FFTW_WISDOM_ONLY from imported wisdom.
unsigned fft_planner_flags(bool from_wisdom);

// FFTW's planners (libfftw3f's and libfftw3's) are not thread-safe: every plan
// and wisdom call of the process holds this lock.
std::mutex& fftw_planner_mutex();

// The forward (r2c) transform of a py x px array whose rows from `rows` on
// are zero (an image's or a template's padded array): the 1-D transforms of
// its rows, kForwardRowBlock rows at a time and only for the blocks that hold
// a nonzero row, then those of the columns, in place. FFTW's 2-D plan does
// the same with every row; skipping the zero ones takes 1280^2 from 4.2 to
// 3.7 ms for an image of 1024 rows and to 2.7 ms for a template of 256
// (FFTW_ESTIMATE; the same bits as the 2-D plan in every case measured).
// Where the last block would pass row py, the 2-D plan `full` does it all.
constexpr int kForwardRowBlock = 16;
// made(py): planned, or not needed (py below one block: the 2-D plan does it).
struct ForwardPlansF {
  fftwf_plan rows = nullptr, cols = nullptr;
  bool made(int py) const { return rows || py < kForwardRowBlock; }
};
struct ForwardPlansD {
  fftw_plan rows = nullptr, cols = nullptr;
  bool made(int py) const { return rows || py < kForwardRowBlock; }
};
// Plans on the planning arrays r (py x px) and c (py x (px/2+1)); both plans
// are null when FFTW makes none (FFTW_WISDOM_ONLY without the wisdom).
ForwardPlansF plan_forward(int py, int px, float* r, fftwf_complex* c, unsigned flags);
ForwardPlansD plan_forward(int py, int px, double* r, fftw_complex* c, unsigned flags);
void destroy_forward(ForwardPlansF& f);
void destroy_forward(ForwardPlansD& f);
// How many rows of the input forward() reads: rows [rows, forward_rows_read)
// must be zero; those from it on are not read.
int forward_rows_read(int py, int rows);
// out = the 2-D forward transform of in (py x px, zero from row `rows` on).
void forward(const ForwardPlansF& f, fftwf_plan full, int py, int px, int rows, float* in, fftwf_complex* out);
void forward(const ForwardPlansD& f, fftw_plan full, int py, int px, int rows, double* in, fftw_complex* out);

// The inverse (c2r) transform for rows [y0, y1] of the output only (valid
// mode and crops search a band of the map): the column transforms of the
// half spectrum in place, then the rows' 1-D transforms, kForwardRowBlock
// rows at a time, only for the blocks that hold a row of the band. FFTW's
// 2-D plan `full` where the blocks would cover more than 7/8 of the rows or
// pass the last one (the full map: the same as before). The input is
// destroyed; out's rows outside the blocks are not written.
struct InversePlansF {
  fftwf_plan cols = nullptr, rows = nullptr;
  bool made(int py) const { return rows || py < kForwardRowBlock; }
};
InversePlansF plan_inverse(int py, int px, fftwf_complex* c, float* r, unsigned flags);
void destroy_inverse(InversePlansF& f);
void inverse_rows(const InversePlansF& f, fftwf_plan full, int py, int px, int y0, int y1, fftwf_complex* in,
                  float* out);

}  // namespace tessera::xcorr
