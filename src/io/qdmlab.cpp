#include "qdmlab.hpp"

#include <hdf5.h>

#include <cmath>

#include "error.hpp"
#include "h5_detail.hpp"

namespace tessera::io {

using detail::hdf5_suffix;

namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what) { throw Error(path + ": " + what); }

Handle open_or_fail(hid_t file, const std::string& name, const std::string& path, const std::string& why) {
  if (H5Lexists(file, name.c_str(), H5P_DEFAULT) <= 0) fail(path, "no dataset " + name + why);
  Handle d(H5Dopen2(file, name.c_str(), H5P_DEFAULT), H5Dclose);
  if (!d) fail(path, "cannot open " + name + hdf5_suffix());
  return d;
}

std::vector<double> read_all(hid_t file, const std::string& name, const std::string& path) {
  Handle d = open_or_fail(file, name, path, " (not a QDMlab run file?)");
  std::uint64_t n = 1;
  for (const std::uint64_t k : detail::dataset_dims(d.get())) n *= k;
  std::vector<double> v(static_cast<std::size_t>(n));
  if (n > 0 && H5Dread(d.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) < 0)
    fail(path, "cannot read " + name + " as numbers" + hdf5_suffix());
  return v;
}

double scalar(hid_t file, const std::string& name, const std::string& path) {
  const std::vector<double> v = read_all(file, name, path);
  if (v.size() != 1) fail(path, name + " holds " + std::to_string(v.size()) + " values, expected 1");
  return v[0];
}

std::int64_t whole(double v, const std::string& name, const std::string& path) {
  if (!(v >= 1 && v <= 1e9 && v == double(std::int64_t(v))))
    fail(path, name + " is " + std::to_string(v) + ", expected a positive whole number");
  return std::int64_t(v);
}

}  // namespace

QdmlabRun::QdmlabRun(const std::string& path) : path_(path) {
  silence_hdf5_errors();
  if (H5Fis_hdf5(path.c_str()) <= 0)
    fail(path, "not a MATLAB v7.3 (HDF5) file; save the run with -v7.3, as QDMlab does");
  file_ = Handle(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (!file_) fail(path, "cannot open as HDF5" + hdf5_suffix());
  rows = whole(scalar(file_.get(), "imgNumRows", path), "imgNumRows", path);
  cols = whole(scalar(file_.get(), "imgNumCols", path), "imgNumCols", path);
  num_freqs = H5Lexists(file_.get(), "numFreqs", H5P_DEFAULT) > 0 ? scalar(file_.get(), "numFreqs", path) : 0;
  stacks = H5Lexists(file_.get(), "imgStack3", H5P_DEFAULT) > 0 ? 4 : 2;
  const std::string why = stacks == 4 ? " (imgStack3 is there: a four-stack run needs imgStack1 to imgStack4)"
                                      : " (a QDMlab run has imgStack1 and imgStack2, or imgStack1 to imgStack4)";
  for (int k = 1; k <= stacks; ++k) {
    const std::string name = "imgStack" + std::to_string(k);
    Handle d = open_or_fail(file_.get(), name, path, why);
    const auto dims = detail::dataset_dims(d.get());
    if (dims.size() != 2)
      fail(path, name + " has " + std::to_string(dims.size()) + " dimensions, expected MATLAB's [n_freq, pixels]");
    if (std::int64_t(dims[0]) != rows * cols)
      fail(path, name + " holds " + std::to_string(dims[0]) + " pixels, imgNumRows x imgNumCols is " +
                     std::to_string(rows) + " x " + std::to_string(cols) + " = " + std::to_string(rows * cols));
    points_.push_back(std::int64_t(dims[1]));
  }
  const int half = stacks / 2;
  for (int k = 0; k < half; ++k) n_low += points_[std::size_t(k)];
  for (int k = half; k < stacks; ++k) n_high += points_[std::size_t(k)];
  std::vector<double> f = read_all(file_.get(), "freqList", path);
  if (std::int64_t(f.size()) != n_low + n_high)
    fail(path, "freqList holds " + std::to_string(f.size()) + " frequencies, the stacks " +
                   std::to_string(n_low + n_high) + " (" + std::to_string(n_low) + " low + " +
                   std::to_string(n_high) + " high)");
  sweep_mhz.resize(f.size());
  for (std::size_t i = 0; i < f.size(); ++i) {
    if (!std::isfinite(f[i])) fail(path, "freqList holds a non-finite value at " + std::to_string(i));
    sweep_mhz[i] = f[i] / 1e6;
  }
}

void QdmlabRun::read_rows(std::int64_t r0, std::int64_t r1, std::vector<double>& out) const {
  const std::int64_t n_rows = r1 - r0, npix = n_rows * cols, n = n_low + n_high;
  out.resize(static_cast<std::size_t>(n * npix));
  std::vector<double> part;
  std::int64_t first = 0;  // the stack's first point in the output
  for (int k = 0; k < stacks; ++k) {
    const std::int64_t nf = points_[std::size_t(k)];
    const std::string name = "imgStack" + std::to_string(k + 1);
    Handle d(H5Dopen2(file_.get(), name.c_str(), H5P_DEFAULT), H5Dclose);
    Handle fspace(d ? H5Dget_space(d.get()) : H5I_INVALID_HID, H5Sclose);
    const hsize_t start[2] = {hsize_t(r0 * cols), 0}, count[2] = {hsize_t(npix), hsize_t(nf)};
    Handle mspace(H5Screate_simple(2, count, nullptr), H5Sclose);
    part.resize(static_cast<std::size_t>(npix * nf));
    if (!d || !fspace || !mspace ||
        H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, start, nullptr, count, nullptr) < 0 ||
        H5Dread(d.get(), H5T_NATIVE_DOUBLE, mspace.get(), fspace.get(), H5P_DEFAULT, part.data()) < 0)
      fail(path_, "cannot read rows " + std::to_string(r0) + ":" + std::to_string(r1) + " of " + name +
                      hdf5_suffix());
    // part[p][f] (pixel p = row * cols + col) -> out[first + f][p]
    for (std::int64_t p = 0; p < npix; ++p)
      for (std::int64_t f = 0; f < nf; ++f)
        out[std::size_t((first + f) * npix + p)] = part[std::size_t(p * nf + f)];
    first += nf;
  }
}

}  // namespace tessera::io
