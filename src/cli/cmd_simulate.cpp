// `tessera simulate odmr|t1|rabi -o FILE.h5`: a realistic cube with its truth
// (src/fit/simulate.hpp), written as tessera fit reads it: /data [n_sweep, ny, nx],
// /sweep, /truth/<param> and, for ODMR, /truth/bnv{k}; with --photons also /sig
// and /ref photon-count frames.
#include <mpi.h>

#include <cstdio>

#include "command.hpp"
#include "fit/simulate.hpp"
#include "io/error.hpp"
#include "io/h5_output.hpp"

namespace tessera::cli {

namespace {

struct SimulateRequest {
  std::string kind, output, size = "64x64";
  fit::SimOptions o;
  bool force = false;
};

int run_simulate(const SimulateRequest& r, const RunContext& ctx) {
  fit::SimOptions o = r.o;
  int ny = 0, nx = 0;
  char tail;
  if (std::sscanf(r.size.c_str(), "%dx%d%c", &ny, &nx, &tail) != 2 || ny < 1 || nx < 1)
    throw UsageError("--size must look like NYxNX (e.g. 64x64), got '" + r.size + "'");
  o.ny = ny;
  o.nx = nx;
  // Every rank computes the same cube (deterministic) and rank 0's copy is written.
  const fit::SimCube c = fit::simulate(r.kind, o);
  const std::uint64_t n = c.n_sweep();
  io::OutputFile out(MPI_COMM_WORLD, r.output, r.force);
  const std::vector<std::uint64_t> cube{n, std::uint64_t(ny), std::uint64_t(nx)};
  const std::vector<std::uint64_t> map{std::uint64_t(ny), std::uint64_t(nx)};
  out.create_dataset("/data", io::DType::Float32, cube);
  out.write_all<float>("/data", c.data);
  if (!c.sig.empty()) {
    out.create_dataset("/sig", io::DType::Float32, cube);
    out.write_all<float>("/sig", c.sig);
    out.create_dataset("/ref", io::DType::Float32, cube);
    out.write_all<float>("/ref", c.ref);
  }
  out.create_dataset("/sweep", io::DType::Float32, {n});
  out.write_all<float>("/sweep", c.sweep);
  const auto names = c.spec.param_names();
  const std::size_t npix = std::size_t(ny) * nx;
  for (std::size_t j = 0; j < names.size(); ++j) {
    out.create_dataset("/truth/" + names[j], io::DType::Float32, map);
    out.write_all<float>("/truth/" + names[j],
                         std::span<const float>(c.truth.data() + j * npix, npix));
  }
  for (std::size_t k = 0; k < c.bnv.size() / npix; ++k) {
    const std::string name = "/truth/bnv" + std::to_string(k);
    out.create_dataset(name, io::DType::Float32, map);
    out.write_all<float>(name, std::span<const float>(c.bnv.data() + k * npix, npix));
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
  c->add_option("kind", req->kind, "odmr, t1 or rabi")->required()->check(CLI::IsMember({"odmr", "t1", "rabi"}));
  c->add_option("-o,--output", req->output, "Output HDF5 file")->required();
  c->add_option("--size", req->size, "Image size NYxNX")->capture_default_str();
  c->add_option("--sweep-points", req->o.n_sweep, "Sweep points (0: 201 odmr, 60 t1, 120 rabi)")
      ->capture_default_str();
  c->add_option("--peaks", req->o.n_peaks, "odmr: 2 (one NV axis) or 8 (four axes)")->capture_default_str();
  c->add_option("--noise", req->o.noise, "Gaussian noise of the normalised signal")->capture_default_str();
  c->add_option("--photons", req->o.photons, "Counts per point: write Poisson /sig and /ref frames")
      ->capture_default_str();
  c->add_option("--contrast", req->o.contrast, "odmr: dip depth")->capture_default_str();
  c->add_option("--fwhm", req->o.fwhm, "odmr: line width, MHz")->capture_default_str();
  c->add_option("--gradient", req->o.gradient_mhz, "odmr: how far the peaks move across the image, MHz")
      ->capture_default_str();
  c->add_option("--bad-fraction", req->o.bad_fraction, "Fraction of dead and of saturated pixels, each")
      ->capture_default_str();
  c->add_option("--seed", req->o.seed, "Random seed")->capture_default_str();
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
