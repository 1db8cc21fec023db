// `tessera merge`: what the user asked for, and the merge itself (merge_job.cpp).
#pragma once

#include <string>
#include <vector>

#include "command.hpp"

namespace tessera::cli {

struct MergeRequest {
  std::vector<std::string> parts;
  std::string output;
  std::string csv;  // xcorr parts: also the table of the merged pairs
  bool force = false, resume = false, quiet = false;
  std::string command_line;
};

int run_merge(const MergeRequest& request, const RunContext& ctx);

}  // namespace tessera::cli
