// `tessera simulate odmr|t1|rabi -o FILE.h5`: a realistic cube with its truth
// (src/fit/simulate.hpp), written as tessera fit reads it: /data [n_sweep, ny, nx],
// /sweep, /truth/<param> and, for ODMR, /truth/bnv{k}; with --photons also /sig
// and /ref photon-count frames.
// `tessera simulate xcorr -o FILE.h5`: a tile-stitching set with known offsets
// (src/xcorr/simulate_tiles.hpp), written as tessera xcorr reads it: /images,
// /templates, /pairs, and /truth/coords, /truth/positions.
#include <mpi.h>

#include <cstdio>
#include <exception>
#include <span>
#include <string>

#include "command.hpp"
#include "fit/simulate.hpp"
#include "xcorr/simulate_tiles.hpp"
#include "io/error.hpp"
#include "io/h5_output.hpp"

namespace tessera::cli {

namespace {

struct SimulateRequest {
  std::string kind, output, size;  // size: 64x64 for cubes, 512x512 for xcorr tiles
  fit::SimOptions o;
  double noise = -1;  // < 0: the kind's default
  xcorr::TileSimOptions tiles;
  std::string template_size;
  bool force = false;
};

void parse_size2(const std::string& s, const char* what, int& ny, int& nx) {
  char tail;
  if (std::sscanf(s.c_str(), "%dx%d%c", &ny, &nx, &tail) != 2 || ny < 1 || nx < 1)
    throw UsageError(std::string(what) + " must look like NYxNX (e.g. 64x64), got '" + s + "'");
}

int run_simulate_xcorr(const SimulateRequest& r, const RunContext& ctx) {
  xcorr::TileSimOptions o = r.tiles;
  parse_size2(r.size.empty() ? "512x512" : r.size, "--size", o.height, o.width);
  if (!r.template_size.empty()) parse_size2(r.template_size, "--template-size", o.tpl_height, o.tpl_width);
  if (r.noise >= 0) o.noise = r.noise;
  o.seed = r.o.seed;
  // Rank 0 computes the set and writes it; the other ranks join the collective
  // writes with the shapes, which follow from the options alone.
  xcorr::TileSim s;
  std::string error;
  if (ctx.is_root()) {
    try {
      s = xcorr::simulate_tiles(o);
    } catch (const std::invalid_argument& e) {
      error = e.what();
    }
  }
  io::throw_if_any(MPI_COMM_WORLD, error);
  std::int64_t shape[7] = {s.n, s.H, s.W, s.k, s.h, s.w, std::int64_t(s.pairs.size() / 2)};
  MPI_Bcast(shape, 7, MPI_INT64_T, 0, MPI_COMM_WORLD);
  const auto u = [](std::int64_t v) { return std::uint64_t(v); };
  io::OutputFile out(MPI_COMM_WORLD, r.output, r.force);
  out.create_dataset("/images", io::DType::Float32, {u(shape[0]), u(shape[1]), u(shape[2])});
  out.write_all<float>("/images", s.images);
  out.create_dataset("/templates", io::DType::Float32, {u(shape[3]), u(shape[4]), u(shape[5])});
  out.write_all<float>("/templates", s.templates);
  out.create_dataset("/pairs", io::DType::Int64, {u(shape[6]), 2});
  out.write_all<std::int64_t>("/pairs", s.pairs);
  out.create_dataset("/truth/coords", io::DType::Int64, {u(shape[6]), 2});
  out.write_all<std::int64_t>("/truth/coords", s.truth);
  out.create_dataset("/truth/positions", io::DType::Int64, {u(shape[0]), 2});
  out.write_all<std::int64_t>("/truth/positions", s.positions);
  out.write_attribute("/truth/coords", "definition",
                      "expected full-map peak (y, x) of each pair; -1 where unknown (random pairs)");
  out.write_attribute("/truth/positions", "definition", "top-left (y, x) of each tile in the specimen");
  if (o.charging > 0) {  // every rank knows: the option is the same everywhere
    out.create_dataset("/image_masks", io::DType::UInt8, {u(shape[0]), u(shape[1]), u(shape[2])});
    out.write_all<std::uint8_t>("/image_masks", s.image_masks);
    out.create_dataset("/template_masks", io::DType::UInt8, {u(shape[3]), u(shape[4]), u(shape[5])});
    out.write_all<std::uint8_t>("/template_masks", s.template_masks);
    out.write_attribute("/image_masks", "definition",
                        "1 = valid, 0 = in a charging band (tessera xcorr --image-masks /image_masks)");
    out.write_attribute("/template_masks", "definition",
                        "the template's crop of its tile's mask (tessera xcorr --template-masks /template_masks)");
    out.write_attribute("/", "charging", o.charging);
  }
  out.write_attribute("/", "simulation", "xcorr");
  out.write_attribute("/", "overlap", o.overlap);
  out.write_attribute("/", "noise", o.noise);
  out.write_attribute("/", "seed", std::int64_t(o.seed));
  out.write_attribute("/", "version", version_line());
  out.commit();
  if (ctx.is_root())
    std::fprintf(stderr, "tessera: wrote %s: %lld tiles %lldx%lld, %lld templates %lldx%lld, %lld pairs (%lld matching)\n",
                 r.output.c_str(), (long long)s.n, (long long)s.H, (long long)s.W, (long long)s.k,
                 (long long)s.h, (long long)s.w, (long long)(s.pairs.size() / 2), (long long)s.n_matching);
  return 0;
}

int run_simulate(const SimulateRequest& r, const RunContext& ctx) {
  if (r.kind == "xcorr") return run_simulate_xcorr(r, ctx);
  fit::SimOptions o = r.o;
  if (r.noise >= 0) o.noise = r.noise;
  int ny = 0, nx = 0;
  parse_size2(r.size.empty() ? "64x64" : r.size, "--size", ny, nx);
  o.ny = ny;
  o.nx = nx;
  // Rank 0 computes the cube and writes it; the other ranks join the collective
  // writes with the shapes and names, from a 1 x 1 cube of the same options
  // (the sweep, the model and which datasets exist do not depend on the size).
  // An error on any rank stops every rank.
  fit::SimOptions local = o;
  if (!ctx.is_root()) local.ny = local.nx = 1;
  fit::SimCube c;
  std::string error;
  try {
    c = fit::simulate(r.kind, local);
  } catch (const std::exception& e) {
    error = e.what();
  }
  io::throw_if_any(MPI_COMM_WORLD, error);
  const std::uint64_t n = c.n_sweep();
  const std::size_t npix = std::size_t(ny) * nx;
  const std::size_t local_npix = std::size_t(local.ny) * local.nx;
  // Rank 0's data; empty elsewhere (write_all writes rank 0's).
  auto mine = [&](const std::vector<float>& v, std::size_t offset, std::size_t count) {
    return ctx.is_root() ? std::span<const float>(v.data() + offset, count) : std::span<const float>();
  };
  io::OutputFile out(MPI_COMM_WORLD, r.output, r.force);
  const std::vector<std::uint64_t> cube{n, std::uint64_t(ny), std::uint64_t(nx)};
  const std::vector<std::uint64_t> map{std::uint64_t(ny), std::uint64_t(nx)};
  out.create_dataset("/data", io::DType::Float32, cube);
  out.write_all<float>("/data", mine(c.data, 0, c.data.size()));
  if (!c.sig.empty()) {
    out.create_dataset("/sig", io::DType::Float32, cube);
    out.write_all<float>("/sig", mine(c.sig, 0, c.sig.size()));
    out.create_dataset("/ref", io::DType::Float32, cube);
    out.write_all<float>("/ref", mine(c.ref, 0, c.ref.size()));
  }
  out.create_dataset("/sweep", io::DType::Float32, {n});
  out.write_all<float>("/sweep", c.sweep);
  const auto names = c.spec.param_names();
  for (std::size_t j = 0; j < names.size(); ++j) {
    out.create_dataset("/truth/" + names[j], io::DType::Float32, map);
    out.write_all<float>("/truth/" + names[j], mine(c.truth, j * npix, npix));
  }
  for (std::size_t k = 0; k < c.bnv.size() / local_npix; ++k) {
    const std::string name = "/truth/bnv" + std::to_string(k);
    out.create_dataset(name, io::DType::Float32, map);
    out.write_all<float>(name, mine(c.bnv, k * npix, npix));
  }
  out.write_attribute("/", "simulation", r.kind);
  out.write_attribute("/", "model", c.spec.model_name());
  out.write_attribute("/", "peaks", std::int64_t(c.spec.is_peak_model() ? c.spec.n_peaks : 0));
  out.write_attribute("/", "param_names", names);
  out.write_attribute("/", "x_unit", c.x_unit);
  out.write_attribute("/", "y_unit", c.y_unit);
  out.write_attribute("/", "noise", o.noise);
  out.write_attribute("/", "photons", o.photons);
  out.write_attribute("/", "seed", std::int64_t(o.seed));
  out.write_attribute("/", "version", version_line());
  out.commit();
  if (ctx.is_root())
    std::fprintf(stderr, "tessera: wrote %s: %s cube %llu x %d x %d (%s)\n", r.output.c_str(),
                 r.kind.c_str(), (unsigned long long)n, ny, nx, c.spec.model_name().c_str());
  return 0;
}

}  // namespace

Command add_simulate_command(CLI::App& app) {
  auto req = std::make_shared<SimulateRequest>();
  CLI::App* c = app.add_subcommand("simulate", "Write a realistic synthetic cube with its ground truth");
  c->add_option("kind", req->kind, "odmr, t1, rabi (cubes for fit) or xcorr (tiles for xcorr)")
      ->required()
      ->check(CLI::IsMember({"odmr", "t1", "rabi", "xcorr"}));
  c->add_option("-o,--output", req->output, "Output HDF5 file")->required();
  c->add_option("--size", req->size, "Image (or xcorr tile) size NYxNX; default 64x64, xcorr 512x512");
  c->add_option("--sweep-points", req->o.n_sweep, "Sweep points (0: 201 odmr, 60 t1, 120 rabi)")
      ->capture_default_str();
  c->add_option("--peaks", req->o.n_peaks, "odmr: 2 (one NV axis) or 8 (four axes)")->capture_default_str();
  c->add_option("--noise", req->noise,
                "Gaussian noise: of the normalised signal (default 2e-3); xcorr: per tile, in units "
                "of the texture's standard deviation (default 0.2)");
  c->add_option("--photons", req->o.photons, "Counts per point: write Poisson /sig and /ref frames")
      ->capture_default_str();
  c->add_option("--contrast", req->o.contrast, "odmr: dip depth")->capture_default_str();
  c->add_option("--fwhm", req->o.fwhm, "odmr: line width, MHz")->capture_default_str();
  c->add_option("--gradient", req->o.gradient_mhz, "odmr: how far the peaks move across the image, MHz")
      ->capture_default_str();
  c->add_option("--bad-fraction", req->o.bad_fraction, "Fraction of dead and of saturated pixels, each")
      ->capture_default_str();
  c->add_option("--seed", req->o.seed, "Random seed")->capture_default_str();
  c->add_option("--images", req->tiles.n_images, "xcorr: number of tiles (on a grid)")->capture_default_str();
  c->add_option("--template-size", req->template_size, "xcorr: template size HxW (default: a quarter of the tile)");
  c->add_option("--overlap", req->tiles.overlap, "xcorr: fraction of a tile shared with the next")
      ->capture_default_str();
  c->add_option("--pairs", req->tiles.n_pairs,
                "xcorr: total pairs; matching pairs first, then random ones (0: only the matching)")
      ->capture_default_str();
  c->add_option("--charging", req->tiles.charging,
                "xcorr: fraction of tiles with a charging band (bright streaks that fool plain ZNCC), "
                "marked 0 in /image_masks and /template_masks")
      ->capture_default_str();
  c->add_flag("--force", req->force, "Overwrite an existing output file");
  return {c, [req](const RunContext& ctx) {
            try {
              return run_simulate(*req, ctx);
            } catch (const io::Error& e) {
              throw UsageError(e.what());
            }
          }};
}

}  // namespace tessera::cli
