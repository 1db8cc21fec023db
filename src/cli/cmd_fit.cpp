// `tessera fit CUBE.h5 -o FIT.h5 --model lorentzian --peaks N [options]`: the
// options; the run is in fit_job.cpp.
#include "fit_job.hpp"

#include "io/error.hpp"

namespace tessera::cli {

namespace {

// The model: built in, shipped, of the user's own (an expression or a file).
void add_model_options(CLI::App* c, FitRequest* req) {
  c->add_option("--model", req->model,
                "lorentzian, gaussian, stretched_exp or damped_cosine, or a shipped model file: esr14n, "
                "esr15n, esr14n_pair, esr15n_pair")
      ->capture_default_str();
  c->add_option("--model-file", req->model_file,
                "A model of your own written in a file (README, \"Your own model\"): parameters with "
                "starts, units and bounds, constants, definitions, the value, derived maps");
  c->add_option("--derive", req->derive,
                "With a model of your own: a map computed from the fitted parameters, NAME=EXPR "
                "(repeatable), written to /derived/NAME with its one-sigma map /derived_sigma/NAME");
  c->add_option("--expr", req->expr,
                "A model of your own: its value at the sweep value x, e.g. "
                "\"offset - amp / (1 + ((x - pos) / (fwhm / 2))^2)\" (+ - * / ^, exp log sqrt abs sin cos "
                "tan atan tanh erf pow min max floor); compiled at run time into the engine");
  c->add_option("--params", req->params, "With --expr: the parameters, comma-separated, in output order");
  c->add_option("--const", req->consts, "A model of your own: named constants NAME=VALUE (repeatable or comma-separated; override a file's)")
      ->delimiter(',');
  c->add_option("--start", req->start,
                "A model of your own: start values NAME=VALUE,... (every parameter of --expr; they "
                "override a file's; the mean spectrum's fit starts there)")
      ->delimiter(',');
  c->add_option("--peaks", req->peaks, "Number of peaks (lorentzian, gaussian): 1 to 8")
      ->capture_default_str();
}

}  // namespace

Command add_fit_command(CLI::App& app) {
  auto req = std::make_shared<FitRequest>();
  CLI::App* c = app.add_subcommand(
      "fit", "Fit a model to every pixel's spectrum of a cube [n_sweep, ny, nx]; writes parameter, "
             "sigma, chi2, state and iteration maps (and B maps for ODMR pairs)");
  c->add_option("cube", req->input, "Input HDF5 file")->required();
  c->add_option("-o,--output", req->output, "Output HDF5 file (written as NAME.partial, renamed when complete)")
      ->required();
  add_model_options(c, req.get());
  c->add_option("--background", req->background, "Peak models: constant or linear (adds `slope`)")
      ->capture_default_str();
  c->add_option("--data", req->data, "Dataset of the cube [n_sweep, ny, nx], any numeric type")
      ->capture_default_str();
  c->add_option("--sweep", req->sweep, "Dataset of the sweep values [n_sweep]")->capture_default_str();
  c->add_option("--sig", req->sig, "Signal frames [n_sweep, ny, nx]: fit sig/ref instead of --data");
  c->add_option("--ref", req->ref, "Reference frames [n_sweep, ny, nx], with --sig");
  c->add_option("--mask", req->mask, "Dataset [ny, nx]: nonzero pixels are skipped (state 4)");
  c->add_option("--roi", req->roi, "Region y0:y1,x0:x1 (input pixels, end exclusive)");
  c->add_option("--bin", req->bin, "Average B x B pixels before fitting")->capture_default_str();
  c->add_option("--fix", req->fix, "Fix a parameter: NAME=VALUE (repeatable)");
  c->add_option("--bound", req->bound, "Bound a parameter: NAME=LO:HI (repeatable)");
  c->add_option("--estimator", req->estimator, "lse (least squares) or mle (Poisson likelihood)")
      ->capture_default_str();
  c->add_option("--max-iter", req->max_iter, "Iteration limit per pixel")->capture_default_str();
  c->add_option("--tol", req->tol, "Relative tolerance on chi-square change and step")
      ->capture_default_str();
  c->add_option("--threads", req->threads, "Threads per rank (0: the cores this rank may use)")
      ->capture_default_str();
  c->add_option("--backend", req->backend,
                "auto (the GPU when every rank sees one, else the CPU), cpu or cuda")
      ->capture_default_str();
  c->add_option("--device", req->device,
                "CUDA device of this rank (default: local rank modulo the visible devices)");
  c->add_option("--gpu-kernel", req->gpu_kernel,
                "CUDA backend: one thread or one warp per fit (auto: a warp from 4 peaks on); "
                "ignored on the CPU")
      ->capture_default_str();
  c->add_option("--guess", req->guess,
                "Starting values: auto (mean-spectrum fit, then a per-pixel search) or a previous "
                "fit's output file")
      ->capture_default_str();
  c->add_option("--memory-budget", req->memory_budget,
                "Memory per rank for the cube slab, e.g. 512M, 4G")
      ->capture_default_str();
  c->add_option("--part", req->part,
                "Fit only part I of N of the output rows (I from 1) and write a part file for "
                "tessera merge; 'auto' takes I/N from a SLURM array submitted as --array=1-N. "
                "Without it the whole image is fitted, inside an array job too");
  c->add_flag("--resume", req->resume,
              "When the output exists and is a complete output of this same input, options and "
              "part, skip the job (one line says so); a different or unfinished file is refused "
              "(or replaced with --force)");
  c->add_flag("--force", req->force, "Overwrite an existing output file");
  c->add_flag("--quiet", req->quiet, "No progress report");
  return {c, [req](const RunContext& ctx) {
            FitRequest r = *req;
            r.command_line = ctx.command_line;
            try {
              return run_fit(r, ctx);
            } catch (const io::Error& e) {
              throw UsageError(e.what());  // unreadable or malformed input: bad input, status 2
            }
          }};
}

}  // namespace tessera::cli
