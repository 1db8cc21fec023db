// Helpers for the multi-rank io tests: a scratch directory shared by the ranks,
// serial writing of input files by rank 0, and error capture.
#pragma once

#include <gtest/gtest.h>
#include <hdf5.h>
#include <mpi.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "io/error.hpp"

namespace tessera::test {

inline int world_rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

inline int world_size() {
  int s = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &s);
  return s;
}

// A scratch directory under the working directory (the build tree, which all
// ranks see), made by rank 0 on first use and removed at the end.
class ScratchDir : public testing::Environment {
 public:
  static const std::string& path() {
    static std::string dir = [] {
      std::string d;
      if (world_rank() == 0) {
        std::string templ = (std::filesystem::current_path() / "tessera_io_XXXXXX").string();
        if (mkdtemp(templ.data()) == nullptr) std::abort();
        d = templ;
      }
      unsigned long long n = d.size();
      MPI_Bcast(&n, 1, MPI_UNSIGNED_LONG_LONG, 0, MPI_COMM_WORLD);
      d.resize(n);
      MPI_Bcast(d.data(), static_cast<int>(n), MPI_CHAR, 0, MPI_COMM_WORLD);
      return d;
    }();
    return dir;
  }
  void TearDown() override {
    MPI_Barrier(MPI_COMM_WORLD);
    if (world_rank() == 0) std::filesystem::remove_all(path());
  }
};

inline std::string scratch(const std::string& name) { return ScratchDir::path() + "/" + name; }

// Rank 0 writes (or adds) a dataset with the serial driver; every rank waits.
// Call on every rank.
inline void serial_write(const std::string& file, const std::string& dataset, hid_t file_type,
                         hid_t mem_type, const std::vector<hsize_t>& dims, const void* data) {
  if (world_rank() == 0) {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    hid_t f = std::filesystem::exists(file) ? H5Fopen(file.c_str(), H5F_ACC_RDWR, H5P_DEFAULT)
                                            : H5Fcreate(file.c_str(), H5F_ACC_EXCL, H5P_DEFAULT,
                                                        H5P_DEFAULT);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
    hid_t d = H5Dcreate2(f, dataset.c_str(), file_type, space, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0 || d < 0) std::abort();
    if (data != nullptr) H5Dwrite(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    H5Dclose(d);
    H5Sclose(space);
    H5Pclose(lcpl);
    H5Fclose(f);
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

// The message of the io::Error that f throws, or a description of what else happened.
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const io::Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("not an io::Error: ") + e.what();
  }
  return "no error";
}

// Every rank holds the same string (checked on every rank against rank 0's).
inline void expect_same_on_all_ranks(const std::string& s) {
  unsigned long long n = s.size();
  MPI_Bcast(&n, 1, MPI_UNSIGNED_LONG_LONG, 0, MPI_COMM_WORLD);
  std::string root(n, '\0');
  if (world_rank() == 0) root = s;
  MPI_Bcast(root.data(), static_cast<int>(n), MPI_CHAR, 0, MPI_COMM_WORLD);
  EXPECT_EQ(s, root) << "differs from rank 0";
}

inline std::vector<char> file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline bool exists(const std::string& path) { return std::filesystem::exists(path); }

}  // namespace tessera::test
