// The `tessera` command: initialises MPI, parses the command line, runs one
// subcommand and turns any error into one line on stderr and an exit status
// (2: bad usage or bad input; 1: any other failure).
#include <mpi.h>

#include <cstdio>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "command.hpp"
#include "mpi/session.hpp"

#ifndef TESSERA_VERSION
#define TESSERA_VERSION "unknown"
#endif

namespace tessera::cli {

std::string version_line() { return std::string("tessera ") + TESSERA_VERSION; }

namespace {

std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

// One write per line, so that the lines of several ranks do not interleave.
void print_error(const std::string& message) {
  const std::string line = "tessera: " + one_line(message) + "\n";
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

int run(int argc, char** argv, const RunContext& ctx) {
  CLI::App app{"tessera: pixel-wise Levenberg-Marquardt fitting and batch cross-correlation "
               "for widefield microscopy",
               "tessera"};
  app.set_version_flag("--version", version_line());
  // At most one subcommand; none is reported after parsing, so that an unknown
  // option is named in the error rather than hidden behind the missing command.
  app.require_subcommand(0, 1);

  const std::vector<Command> commands = {
      add_info_command(app),
      add_fit_command(app),
      add_simulate_command(app),
      add_xcorr_command(app),
      add_merge_command(app),
      add_import_command(app),
  };

  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {  // --help, --version
    if (ctx.is_root()) app.exit(e);
    return 0;
  } catch (const CLI::ParseError& e) {
    // Every rank parses the same command line and reaches the same verdict;
    // rank 0 alone says so.
    if (ctx.is_root()) print_error(std::string(e.what()) + " (see tessera --help)");
    return 2;
  }

  if (app.get_subcommands().empty()) {
    if (ctx.is_root()) print_error("a subcommand is required (see tessera --help)");
    return 2;
  }
  for (const Command& c : commands) {
    if (!c.app->parsed()) continue;
    try {
      return c.run(ctx);
    } catch (const UsageError& e) {
      print_error(e.what());
      return 2;
    } catch (const std::invalid_argument& e) {
      print_error(e.what());
      return 2;
    } catch (const std::exception& e) {
      print_error(e.what());
      return 1;
    }
  }
  return 2;  // unreachable: every subcommand is in `commands`
}

}  // namespace
}  // namespace tessera::cli

int main(int argc, char** argv) {
  tessera::mpi::Session mpi(argc, argv);
  tessera::cli::RunContext ctx;
  ctx.rank = mpi.rank();
  ctx.size = mpi.size();
  for (int i = 0; i < argc; ++i) ctx.command_line += (i ? " " : "") + std::string(argv[i]);
  const int status = tessera::cli::run(argc, argv, ctx);
  std::fflush(stdout);
  return status;
}
