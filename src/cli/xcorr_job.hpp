// `tessera xcorr`: what the user asked for, and the run itself. The pair list
// is split over the ranks by image groups (mpi/pairs.hpp); each rank reads only
// the images and templates its pairs need, in batches that fit the memory
// budget, correlates its pairs through the library's engine
// (api::PairCorrelator, src/api/xcorr.hpp), and rank 0 gathers the peaks back
// into the order of the pair list (mpi/pair_gather.hpp) and writes them.
#pragma once

#include <optional>
#include <string>

#include "command.hpp"

namespace tessera::cli {

struct XcorrRequest {
  std::string input, output;
  std::string images = "/images", templates = "/templates", pairs = "/pairs";
  std::string image_masks, template_masks;  // datasets shaped as images / templates; "": none
  std::string crop = "0,0";  // A,B or A (both)
  double eps = 1e-6;
  double min_overlap = 0;
  bool normalize_input = false;
  std::string mode = "full";
  int exclusion = 5;
  std::optional<int> top, min_distance;  // --top K, --min-distance D (unset: --exclusion)
  bool subpixel = false;
  int threads = 0;
  std::string backend = "auto";
  int device = -1;
  std::string memory_budget = "2G";
  std::string fft_wisdom;  // --fft-wisdom FILE: measured FFT plans shared by every rank and run
  std::string csv;
  std::string part;  // "I/N", "auto" or "" (the whole pair list)
  bool resume = false;
  bool force = false, quiet = false;
  std::string command_line;
};

int run_xcorr(const XcorrRequest& request, const RunContext& ctx);

}  // namespace tessera::cli
