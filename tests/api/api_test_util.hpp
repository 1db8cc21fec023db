// Helpers of the library API tests: run the tessera binary to write the files
// the API's results are compared with, and read datasets back with HDF5's
// serial driver (no MPI needed in the test process).
#pragma once

#include <gtest/gtest.h>
#include <hdf5.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

namespace tessera::test {

// A fresh scratch directory under the working directory (the build tree), of
// this process alone (ctest runs each test case in a process of its own, in
// parallel). The caller removes it (remove_scratch_dir).
inline std::string scratch_dir(const std::string& name) {
  const auto d = std::filesystem::current_path() / ("api_test_" + name + "_" + std::to_string(getpid()));
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d.string();
}

inline void remove_scratch_dir(const std::string& dir) { std::filesystem::remove_all(dir); }

// Runs `tessera ARGS` (the build's binary, one rank); returns its exit status.
inline int run_tessera(const std::string& args) {
  const std::string cmd = std::string(TESSERA_BINARY) + " " + args + " 2>/dev/null";
  const int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

template <class T> hid_t h5_native();
template <> inline hid_t h5_native<float>() { return H5T_NATIVE_FLOAT; }
template <> inline hid_t h5_native<double>() { return H5T_NATIVE_DOUBLE; }
template <> inline hid_t h5_native<std::int32_t>() { return H5T_NATIVE_INT32; }
template <> inline hid_t h5_native<std::int64_t>() { return H5T_NATIVE_INT64; }
template <> inline hid_t h5_native<std::uint16_t>() { return H5T_NATIVE_UINT16; }

// The whole dataset, converted by HDF5 to T, and its shape.
template <class T>
std::vector<T> read_dataset(const std::string& file, const std::string& name,
                            std::vector<std::int64_t>* shape = nullptr) {
  const hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) ADD_FAILURE() << "cannot open " << file;
  const hid_t d = H5Dopen2(f, name.c_str(), H5P_DEFAULT);
  if (d < 0) ADD_FAILURE() << file << ": no dataset " << name;
  const hid_t s = H5Dget_space(d);
  const int rank = H5Sget_simple_extent_ndims(s);
  std::vector<hsize_t> dims(std::size_t(rank > 0 ? rank : 0));
  H5Sget_simple_extent_dims(s, dims.data(), nullptr);
  std::size_t n = 1;
  if (shape) shape->clear();
  for (auto v : dims) {
    n *= v;
    if (shape) shape->push_back(std::int64_t(v));
  }
  std::vector<T> out(n);
  if (n) H5Dread(d, h5_native<T>(), H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data());
  H5Sclose(s);
  H5Dclose(d);
  H5Fclose(f);
  return out;
}

// Adds (or replaces) a float dataset of the given shape in an existing file.
inline void write_dataset(const std::string& file, const std::string& name, const std::vector<float>& data,
                          const std::vector<std::int64_t>& shape) {
  const hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(f, 0) << "cannot open " << file;
  if (H5Lexists(f, name.c_str(), H5P_DEFAULT) > 0) H5Ldelete(f, name.c_str(), H5P_DEFAULT);
  std::vector<hsize_t> dims(shape.begin(), shape.end());
  const hid_t s = H5Screate_simple(int(dims.size()), dims.data(), nullptr);
  const hid_t d = H5Dcreate2(f, name.c_str(), H5T_NATIVE_FLOAT, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data());
  H5Dclose(d);
  H5Sclose(s);
  H5Fclose(f);
}

// Whether `tessera info` sees a CUDA device (GPU-only checks skip without one).
inline bool cuda_device_visible() {
  std::string text;
  if (FILE* p = popen((std::string(TESSERA_BINARY) + " info 2>/dev/null").c_str(), "r")) {
    char buf[512];
    while (std::fgets(buf, sizeof buf, p)) text += buf;
    pclose(p);
  }
  const auto at = text.find("cuda devices");
  return at != std::string::npos && text.substr(at, text.find('\n', at) - at).find("none") == std::string::npos;
}

// Bit equality of two arrays (NaN equals NaN of the same bits).
template <class T>
::testing::AssertionResult same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  if (a.size() != b.size())
    return ::testing::AssertionFailure() << "sizes differ: " << a.size() << " vs " << b.size();
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::memcmp(&a[i], &b[i], sizeof(T)) != 0)
      return ::testing::AssertionFailure() << "element " << i << " differs: " << a[i] << " vs " << b[i];
  return ::testing::AssertionSuccess();
}

}  // namespace tessera::test
