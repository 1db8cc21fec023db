// `tessera xcorr PAIRS.h5 -o PEAKS.h5 [options]`: the options; the run is in
// xcorr_job.cpp.
#include "io/error.hpp"
#include "xcorr_job.hpp"

namespace tessera::cli {

Command add_xcorr_command(CLI::App& app) {
  auto req = std::make_shared<XcorrRequest>();
  CLI::App* c = app.add_subcommand(
      "xcorr",
      "Zero-normalised cross-correlation (normxcorr2, full mode) of (image, template) pairs; "
      "writes each pair's peak /coords (y, x in the full map), /peaks and /quality, in the order "
      "of the pair list");
  c->add_option("pairs_file", req->input, "Input HDF5 file with the images, templates and pairs")
      ->required();
  c->add_option("-o,--output", req->output, "Output HDF5 file (written as NAME.partial, renamed when complete)")
      ->required();
  c->add_option("--images", req->images, "Dataset of the images [n, H, W], any numeric type")
      ->capture_default_str();
  c->add_option("--templates", req->templates, "Dataset of the templates [k, h, w], any numeric type")
      ->capture_default_str();
  c->add_option("--pairs", req->pairs, "Dataset of the pairs [p, 2]: image index, template index (integers)")
      ->capture_default_str();
  c->add_option("--image-masks", req->image_masks,
                "Dataset of masks shaped like the images, any numeric type, nonzero = valid: R is the "
                "correlation over the pixels valid in both (masked ZNCC)");
  c->add_option("--template-masks", req->template_masks,
                "Dataset of masks shaped like the templates (as --image-masks; either may be given alone)");
  c->add_option("--crop", req->crop,
                "A,B: skip A rows at the top and at the bottom and B columns at the left and at the "
                "right of the full map in the peak search (A alone: both)")
      ->capture_default_str();
  c->add_option("--eps", req->eps, "R = 0 where the squared denominator (window SSD * template SSD) is <= eps")->capture_default_str();
  c->add_option("--min-overlap", req->min_overlap,
                "R = 0 where fewer than this fraction of the template's (valid) pixels overlap the image's (valid) ones (0 to 1; "
                "0.3-0.5 keeps slivers of overlap from winning on EM tiles)")
      ->capture_default_str();
  c->add_flag("--normalize-input", req->normalize_input, "Subtract each image's mean first");
  c->add_option("--mode", req->mode, "full (every overlap) or valid (only full overlap, as OpenCV)")
      ->capture_default_str();
  c->add_flag("--subpixel", req->subpixel, "Also write /subpixel [p, 2]: the peak refined by a parabola");
  c->add_option("--exclusion", req->exclusion,
                "Peak ratio: the second value is the best farther than this from the peak (placements)")
      ->capture_default_str();
  c->add_option_function<int>(
      "--top", [req](const int& k) { req->top = k; },
      "Also write /top_coords [p, K, 2] and /top_peaks [p, K]: the K highest local maxima (each >= its 8 "
      "neighbours) of the searched region, highest first, each farther than --min-distance from every "
      "higher one kept; (-1, -1) and NaN where there are fewer");
  c->add_option_function<int>(
      "--min-distance", [req](const int& d) { req->min_distance = d; },
      "With --top: each kept peak lies more than D placements (Chebyshev) from every higher one "
      "(default: --exclusion)");
  c->add_option("--csv", req->csv,
                "Also write a table: index,image,template,y,x,peak,sharpness,peak_ratio (then, with --top K, "
                "top1_y,top1_x,top1_peak, ..., topK_peak)");
  c->add_option("--threads", req->threads, "Threads per rank (0: the cores this rank may use)")
      ->capture_default_str();
  c->add_option("--backend", req->backend, "auto, cpu or cuda")->capture_default_str();
  c->add_option("--device", req->device, "CUDA device of this rank");
  c->add_option("--fft-wisdom", req->fft_wisdom,
                "FFT plans chosen by timing (FFTW_MEASURE), kept in FILE and read by every rank and later run: "
                "faster transforms, the same bits for any number of ranks among runs that use FILE (measured "
                "once, a few seconds; CPU backend)");
  c->add_option("--memory-budget", req->memory_budget,
                "Memory per rank for images, templates and transforms, e.g. 512M, 4G")
      ->capture_default_str();
  c->add_option("--part", req->part,
                "Correlate only part I of N of the pair list (I from 1) and write a part file for "
                "tessera merge; 'auto' takes I/N from a SLURM array submitted as --array=1-N");
  c->add_flag("--resume", req->resume,
              "When the output exists and is a complete output of this same input, options and "
              "part, skip the job (one line says so); a different or unfinished file is refused "
              "(or replaced with --force)");
  c->add_flag("--force", req->force, "Overwrite existing output files");
  c->add_flag("--quiet", req->quiet, "No progress report");
  return {c, [req](const RunContext& ctx) {
            XcorrRequest r = *req;
            r.command_line = ctx.command_line;
            try {
              return run_xcorr(r, ctx);
            } catch (const io::Error& e) {
              throw UsageError(e.what());  // unreadable or malformed input: bad input, status 2
            }
          }};
}

}  // namespace tessera::cli
