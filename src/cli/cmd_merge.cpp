// `tessera merge PART... -o OUT.h5`: the options; the merge is in merge_job.cpp.
#include "merge_job.hpp"

#include "io/error.hpp"

namespace tessera::cli {

Command add_merge_command(CLI::App& app) {
  auto req = std::make_shared<MergeRequest>();
  CLI::App* c = app.add_subcommand(
      "merge", "Join the part files of a job (tessera fit --part I/N) into the output one "
               "unpartitioned run writes; the parts must come from the same input and options and "
               "cover every row exactly once");
  c->add_option("parts", req->parts, "Part files, in any order")->required();
  c->add_option("-o,--output", req->output, "Output HDF5 file (written as NAME.partial, renamed when complete)")
      ->required();
  c->add_option("--csv", req->csv,
                "xcorr parts: also write the table of all pairs, as tessera xcorr --csv does (the "
                "pairs are read from the input file the parts record)");
  c->add_flag("--force", req->force, "Overwrite an existing output file (and CSV table)");
  c->add_flag("--resume", req->resume,
              "When the output exists and is already the merge of these parts' input and options, "
              "do nothing (one line says so)");
  c->add_flag("--quiet", req->quiet, "No line on success");
  return {c, [req](const RunContext& ctx) {
            MergeRequest r = *req;
            r.command_line = ctx.command_line;
            try {
              return run_merge(r, ctx);
            } catch (const io::Error& e) {
              throw UsageError(e.what());  // unreadable or malformed parts: bad input, status 2
            }
          }};
}

}  // namespace tessera::cli
