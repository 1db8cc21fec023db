// What every `tessera` subcommand provides to main.cpp: it registers its
// options on the application and returns the function that runs it once the
// command line has been parsed. Each subcommand lives in its own cmd_<name>.cpp.
#pragma once

#include <chrono>
#include <functional>
#include <stdexcept>
#include <string>

#include <CLI/CLI.hpp>

namespace tessera::cli {

// The process's place in the MPI job.
struct RunContext {
  int rank = 0;
  int size = 1;
  std::string command_line;  // as typed, recorded in outputs
  bool is_root() const { return rank == 0; }
};

// Bad usage or bad input detected after parsing: one line, exit status 2
// (std::invalid_argument is treated the same way).
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Command {
  CLI::App* app = nullptr;                     // the subcommand's parser
  std::function<int(const RunContext&)> run;  // returns the exit status
};

// Wall-clock timings recorded in outputs.
using Clock = std::chrono::steady_clock;
inline double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// The version line printed by `tessera --version` and `tessera info`.
std::string version_line();

Command add_info_command(CLI::App& app);
Command add_fit_command(CLI::App& app);
Command add_simulate_command(CLI::App& app);
Command add_xcorr_command(CLI::App& app);
Command add_merge_command(CLI::App& app);
Command add_import_command(CLI::App& app);

}  // namespace tessera::cli
