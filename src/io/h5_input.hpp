// Reading input files with parallel HDF5 (MPI-IO driver, collective transfers).
//
// Collective vs local. An InputFile is opened on a communicator, and EVERY
// member function is collective over it: all ranks call the same functions
// with the same dataset names, in the same order (the file is opened with
// collective metadata operations, so even describe() and has() are
// collective). Only the slab bounds and buffers of read_slab/read_block may
// differ between ranks; a rank with nothing to read passes an empty row range
// and still takes part (it selects nothing: H5Sselect_none). The destructor
// closes the file and is collective too.
//
// Errors. Everything throws io::Error with a one-line message naming the file
// and dataset. Errors from the file's contents are raised on every rank alike;
// errors from a rank's own arguments are agreed (agree_error) before the
// collective transfer, so every rank throws. See error.hpp.
//
// Types. read_vector returns double, read_slab/read_block return float from a
// dataset of any integer or float type: HDF5 converts (H5T_NATIVE_FLOAT as the
// memory type; a float64 beyond the float range becomes +-inf, NaN stays NaN).
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

enum class NumericClass { Integer, Float, None };

struct DatasetInfo {
  std::string name;                  // normalised: "/data"
  std::vector<std::uint64_t> dims;   // empty for a scalar
  NumericClass numeric = NumericClass::None;
  std::string type;                  // "uint16", "float64", "string", "compound", ...
  std::size_t type_size = 0;         // bytes per element in the file
  std::vector<std::uint64_t> chunk;  // the chunk's dimensions; empty unless the layout is chunked

  [[nodiscard]] int rank() const { return static_cast<int>(dims.size()); }
  [[nodiscard]] std::uint64_t elements() const;  // product of dims (1 for a scalar)
  [[nodiscard]] bool is_numeric() const { return numeric != NumericClass::None; }
};

// Rows [y0, y1) and columns [x0, x1) of an image or of every frame of a cube.
struct Block {
  std::int64_t y0 = 0, y1 = 0;
  std::int64_t x0 = 0, x1 = 0;
  [[nodiscard]] std::int64_t rows() const { return y1 - y0; }
  [[nodiscard]] std::int64_t cols() const { return x1 - x0; }
  [[nodiscard]] std::int64_t pixels() const { return rows() * cols(); }
};

class InputFile {
 public:
  // Collective. Rank 0 checks the path (no such file, a directory, not an
  // HDF5 file) and broadcasts the verdict; then every rank opens the file
  // read-only with the MPI-IO driver.
  InputFile(MPI_Comm comm, std::string path);
  ~InputFile();  // collective (closes the file)
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;
  InputFile(InputFile&&) noexcept = default;
  InputFile& operator=(InputFile&&) noexcept = default;

  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] MPI_Comm comm() const { return comm_; }
  [[nodiscard]] hid_t id() const { return file_.get(); }  // for callers' own HDF5 calls

  // Collective. Whether `dataset` names a dataset.
  [[nodiscard]] bool has(std::string_view dataset);

  // Collective. Rank, dimensions and type of a dataset. Throws when the
  // dataset does not exist or is not a dataset; any type is described.
  [[nodiscard]] DatasetInfo describe(std::string_view dataset);

  // Collective. describe(), then throws unless the dataset has `rank`
  // dimensions (what_dims, e.g. "[n_sweep, ny, nx]", explains them in the
  // message), a float or integer type, and at least one element.
  [[nodiscard]] DatasetInfo require(std::string_view dataset, int rank,
                                    std::string_view what_dims = {});

  // Collective. A whole 1-D numeric dataset as double, on every rank (the
  // sweep). Throws as require(dataset, 1).
  [[nodiscard]] std::vector<double> read_vector(std::string_view dataset);

  // Collective. From a 3-D dataset [n_sweep, ny, nx] of any numeric type,
  // this rank's slab [0:n_sweep, y0:y1, x0:x1] as float, into `out` in the
  // file's order: out[(i * rows + y) * cols + x] (sweep-major; see
  // layout.hpp to make it pixel-major). out must hold exactly
  // n_sweep * block.pixels() values. A rank with block.rows() == 0 reads
  // nothing and still takes part. Returns n_sweep.
  std::uint64_t read_slab(std::string_view dataset, const Block& block, std::span<float> out);

  // Collective. From a 2-D dataset [ny, nx] of any numeric type (a mask, a
  // previous fit's map), this rank's block [y0:y1, x0:x1] as float, row-major
  // in `out` (exactly block.pixels() values).
  void read_block(std::string_view dataset, const Block& block, std::span<float> out);

  // Collective. A whole integer dataset of `rank` dimensions (a pair list
  // [p, 2]) as int64, row-major, on every rank. Throws as require(), and when
  // the type is not an integer type.
  [[nodiscard]] std::vector<std::int64_t> read_integers(std::string_view dataset, int rank,
                                                        std::string_view what_dims = {});

  // Collective. From a 3-D dataset [n, ny, nx] of any numeric type (a stack of
  // images), the frames listed in `frames` (strictly increasing, each in
  // [0, n); every rank its own list, possibly empty) as float, frame after
  // frame into `out` (exactly frames.size() * ny * nx values), in one
  // collective read.
  void read_frames(std::string_view dataset, std::span<const std::int64_t> frames,
                   std::span<float> out);
  // The same as double (masks: a tiny nonzero double stays nonzero).
  void read_frames(std::string_view dataset, std::span<const std::int64_t> frames,
                   std::span<double> out);

  // Collective. Attributes of an object ("/" for the file's root group).
  [[nodiscard]] bool has_attribute(std::string_view object, std::string_view name);
  [[nodiscard]] std::string read_attribute_string(std::string_view object, std::string_view name);
  // A 1-D list of strings (a scalar string gives a list of one).
  [[nodiscard]] std::vector<std::string> read_attribute_strings(std::string_view object,
                                                                std::string_view name);
  [[nodiscard]] std::vector<double> read_attribute_doubles(std::string_view object,
                                                           std::string_view name);

 private:
  void read_frames_as(std::string_view dataset, std::span<const std::int64_t> frames, void* out,
                      std::size_t out_size, hid_t mem_type);
  void read_hyperslab(const std::string& name, const std::vector<std::uint64_t>& dims,
                      const Block& block, std::span<float> out, std::uint64_t leading);

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0;
  std::string path_;
  Handle file_;
};

}  // namespace tessera::io
