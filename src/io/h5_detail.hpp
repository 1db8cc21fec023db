// Internal helpers shared by h5_input.cpp and h5_output.cpp; not for use
// outside src/io.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "error.hpp"
#include "h5_handle.hpp"

namespace tessera::io::detail {

// "/data" for "data", "/a/b" for "a/b/"; "/" stays "/".
[[nodiscard]] std::string normalise_path(std::string_view path);

// The innermost description on HDF5's error stack of this thread ("" when the
// stack is empty), then clears the stack.
[[nodiscard]] std::string hdf5_reason();

// " (HDF5: reason)" or "" when HDF5 gave none.
[[nodiscard]] std::string hdf5_suffix();

// File access list for the MPI-IO driver on comm, with collective metadata
// reads and writes (so every call on the file is collective).
[[nodiscard]] Handle mpio_fapl(MPI_Comm comm);

// Transfer list with H5FD_MPIO_COLLECTIVE.
[[nodiscard]] Handle collective_dxpl();

// "[4, 5, 6]".
[[nodiscard]] std::string dims_string(const std::vector<std::uint64_t>& dims);

// "uint16", "float32", "string", "compound", ...
[[nodiscard]] std::string type_name(hid_t type);

enum class ObjectKind { Missing, Dataset, Group, Other };

// What `path` names in the file (every link along the path checked, so a
// missing parent is Missing rather than an HDF5 error). Collective when the
// file uses collective metadata operations.
[[nodiscard]] ObjectKind object_kind(hid_t file, const std::string& path);

// Opens a dataset; throws Error "file: path: no such dataset" / "is a group,
// not a dataset" / ... naming `file_name`.
[[nodiscard]] Handle open_dataset(hid_t file, const std::string& file_name,
                                  const std::string& path);

// Opens the object an attribute belongs to ("/" for the file's root group).
[[nodiscard]] Handle open_object(hid_t file, const std::string& file_name,
                                 const std::string& path);

// Dimensions of a dataset's dataspace.
[[nodiscard]] std::vector<std::uint64_t> dataset_dims(hid_t dset);

// Collective over comm: rank 0's string on every rank.
[[nodiscard]] std::string broadcast_string(MPI_Comm comm, const std::string& s);

}  // namespace tessera::io::detail
