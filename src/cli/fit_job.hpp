// `tessera fit`: what the user asked for, and the run itself (MPI ranks split
// the output rows; each rank reads its slab in chunks that fit the memory
// budget, fits them, and writes its rows of every map collectively).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "command.hpp"

namespace tessera::cli {

struct FitRequest {
  std::string input, output;
  std::string data = "/data", sweep = "/sweep", sig, ref, mask;
  std::string model = "lorentzian", background = "constant";
  // A model of the user's own: its expression, parameters (comma-separated),
  // constants and starts (NAME=VALUE items, repeatable or comma-separated).
  std::string expr, params;
  std::vector<std::string> consts, start;
  std::string model_file;           // a model file (or --model NAME of a shipped one)
  std::vector<std::string> derive;  // NAME=EXPR of the parameters (repeatable)
  int peaks = 2;
  std::string roi;  // "y0:y1,x0:x1", empty: the whole image
  int bin = 1;
  std::vector<std::string> fix, bound;  // NAME=VALUE, NAME=LO:HI
  std::string estimator = "lse";
  int max_iter = 100;
  double tol = 1e-6;
  int threads = 0;
  std::string backend = "auto";
  int device = -1;  // -1: local rank modulo the visible devices
  std::string gpu_kernel = "auto";  // CUDA backend: auto, thread or warp (per fit)
  std::string guess = "auto";
  std::string memory_budget = "2G";
  std::string part;      // "I/N", "auto" or "" (the whole output); see part.hpp
  bool resume = false;   // skip when the output is already complete (verified)
  bool force = false, quiet = false;
  std::string command_line;
};

int run_fit(const FitRequest& request, const RunContext& ctx);

}  // namespace tessera::cli
