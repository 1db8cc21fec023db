// Writing output files with parallel HDF5, all or nothing.
//
// An OutputFile writes to NAME.partial and renames it to NAME in commit(); if
// anything fails, or the object is destroyed without commit(), the partial
// file is removed: no half-written output is ever left under either name.
//
// Collective vs local. Every member function, the constructor and the
// destructor are collective over the communicator:
//  - metadata calls (create_group, create_dataset, write_attribute) need the
//    same arguments on every rank;
//  - write_rows / write_slab take each rank's own block of rows (a rank with
//    no rows passes an empty range and an empty span, and still takes part);
//  - write_all writes rank 0's data; the other ranks take part with any data.
// Errors from a rank's own arguments are agreed before the collective
// transfer, so that every rank throws the same io::Error (see error.hpp).
// Since an error is thrown on every rank alike, the destructors run on every
// rank together, as the collective close needs.
//
// Reproducibility. Objects are created without modification times, so the
// same calls give the same file, byte for byte, whatever the number of ranks.
//
// Types. Datasets are created with a DType; write_* accept float, double,
// int32, int64, uint8, uint16 or uint32 data and HDF5 converts to the
// dataset's type where they differ.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "error.hpp"
#include "h5_handle.hpp"

namespace tessera::io {

enum class DType { UInt8, UInt16, UInt32, Int32, Int64, Float32, Float64 };

// How a dataset is stored: contiguous (no chunk), or in chunks of these
// dimensions, optionally byte-shuffled and deflated (gzip level `deflate`).
struct Storage {
  std::vector<std::uint64_t> chunk;
  int deflate = 0;
};

class OutputFile {
 public:
  // Collective. Rank 0 checks the output: refuses an existing `path` unless
  // `force` (and refuses a directory always), refuses a missing parent
  // directory, removes a stale `path`.partial; the verdict is broadcast. Then
  // every rank creates `path`.partial with the MPI-IO driver.
  OutputFile(MPI_Comm comm, std::string path, bool force);
  // Collective. Without commit(): closes and removes the partial file.
  ~OutputFile();
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] const std::string& partial_path() const { return partial_; }
  [[nodiscard]] MPI_Comm comm() const { return comm_; }
  [[nodiscard]] bool committed() const { return committed_; }
  [[nodiscard]] hid_t id() const { return file_.get(); }  // for callers' own HDF5 calls

  // Collective, same arguments. Creates a group and any missing parents; an
  // existing group is fine.
  void create_group(std::string_view group);

  // Collective, same arguments. Creates a dataset (contiguous, allocated at
  // once, unless `storage` says otherwise) and any missing parent groups:
  // "/params/offset", DType::Float32, {ny, nx}. Throws if the name is taken.
  void create_dataset(std::string_view dataset, DType type, const std::vector<std::uint64_t>& dims,
                      const Storage& storage = {});

  // Collective. Writes this rank's rows [row0, row1) along the first
  // dimension; `data` holds those rows in row-major order, exactly
  // (row1 - row0) * (product of the other dimensions) values.
  template <class T>
  void write_rows(std::string_view dataset, std::int64_t row0, std::int64_t row1,
                  std::span<const T> data);

  // Collective. For a 3-D dataset [n, ny, nx]: writes [0:n, y0:y1, 0:nx] from
  // `data` in sweep-major order, exactly n * (y1 - y0) * nx values (a cube split
  // by pixel rows, as read back by InputFile::read_slab).
  template <class T>
  void write_slab(std::string_view dataset, std::int64_t y0, std::int64_t y1,
                  std::span<const T> data);

  // Collective. Writes the whole dataset from rank 0's `data` (a sweep, a small
  // table); the other ranks' data is ignored and may be empty.
  template <class T>
  void write_all(std::string_view dataset, std::span<const T> data);

  // Collective, same arguments. Attributes of a group or dataset ("/" for the
  // root group); an existing attribute of that name is replaced. Strings are
  // stored as UTF-8 variable-length strings (h5py reads them as str).
  void write_attribute(std::string_view object, std::string_view name, std::string_view value);
  void write_attribute(std::string_view object, std::string_view name,
                       const std::vector<std::string>& values);
  void write_attribute(std::string_view object, std::string_view name, double value);
  void write_attribute(std::string_view object, std::string_view name,
                       const std::vector<double>& values);
  void write_attribute(std::string_view object, std::string_view name, std::int64_t value);

  // Collective. Closes the file and, after a barrier, rank 0 renames
  // NAME.partial to NAME (atomically, replacing NAME when force was given).
  // On failure the partial file is removed and every rank throws.
  void commit();

 private:
  void write_hyperslab(const std::string& name, const std::vector<std::uint64_t>& start,
                       const std::vector<std::uint64_t>& count, hid_t mem_type,
                       const void* data, std::size_t n, bool active);
  std::vector<std::uint64_t> dims_of(const std::string& name);
  void write_attribute_raw(std::string_view object, std::string_view name, hid_t file_type,
                           hid_t mem_type, hid_t space, const void* data);
  void remove_partial();
  [[nodiscard]] std::string at(const std::string& dataset, const std::string& what) const;

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0;
  std::string path_;
  std::string partial_;
  bool force_ = false;
  bool committed_ = false;
  Handle file_;
};

}  // namespace tessera::io
