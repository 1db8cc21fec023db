// Listing a file's objects and copying datasets and attributes between files
// without any type conversion, so that values travel bit for bit (for
// `tessera merge`, which joins part files into one output).
//
// These are plain HDF5 calls on open file identifiers (InputFile::id(),
// OutputFile::id()); they are meant for files opened on a one-rank
// communicator (MPI_COMM_SELF), where independent transfers are fine. Every
// failure throws io::Error with a one-line message naming the file.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "h5_output.hpp"

namespace tessera::io {

// Every group (starting with "/") and every dataset of a file, each list in
// name order, as full paths ("/params/pos0").
struct ObjectList {
  std::vector<std::string> groups;
  std::vector<std::string> datasets;
};
[[nodiscard]] ObjectList list_objects(hid_t file, const std::string& file_name);

// Names of the attributes of an object ("/" for the root group), in name order.
[[nodiscard]] std::vector<std::string> attribute_names(hid_t file, const std::string& file_name,
                                                       const std::string& object);

// A whole dataset as the bytes of its file type (no conversion).
struct RawDataset {
  std::vector<std::uint64_t> dims;
  std::string type;               // "float32", "int32", ... (detail::type_name)
  std::vector<unsigned char> bytes;
};
[[nodiscard]] RawDataset read_raw(hid_t file, const std::string& file_name, const std::string& dataset);

// The DType of a type name from read_raw ("float32" -> Float32); nullopt for a
// type tessera does not write.
[[nodiscard]] std::optional<DType> dtype_of(const std::string& type);

// Writes `data` into rows [row0, row0 + data.dims[0]) of an existing dataset of
// the same type whose other dimensions match.
void write_raw_rows(hid_t file, const std::string& file_name, const std::string& dataset,
                    std::uint64_t row0, const RawDataset& data);

// Copies attribute `name` of `object` from one file to the same object of the
// other, with its type and shape (an existing one is replaced).
void copy_attribute(hid_t from, const std::string& from_name, hid_t to, const std::string& to_name,
                    const std::string& object, const std::string& name);

// Replaces the values of an existing numeric attribute, keeping its type and
// shape (HDF5 converts from double); `values` must hold one per element.
void overwrite_attribute(hid_t file, const std::string& file_name, const std::string& object,
                         const std::string& name, const std::vector<double>& values);

}  // namespace tessera::io
