#include "h5_detail.hpp"

#include <array>
#include <sstream>

namespace tessera::io::detail {

std::string normalise_path(std::string_view path) {
  std::string p(path);
  if (p.empty() || p.front() != '/') p.insert(p.begin(), '/');
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}

namespace {

herr_t innermost(unsigned n, const H5E_error2_t* err, void* data) {
  if (n != 0) return 0;
  auto* out = static_cast<std::string*>(data);
  if (err->desc != nullptr && err->desc[0] != '\0') {
    *out = err->desc;
  } else {
    std::array<char, 256> buf{};
    H5E_type_t type;
    if (H5Eget_msg(err->min_num, &type, buf.data(), buf.size()) > 0) *out = buf.data();
  }
  return 0;
}

}  // namespace

std::string hdf5_reason() {
  std::string reason;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermost, &reason);
  H5Eclear2(H5E_DEFAULT);
  return reason;
}

std::string hdf5_suffix() {
  std::string r = hdf5_reason();
  return r.empty() ? std::string() : " (HDF5: " + r + ")";
}

Handle mpio_fapl(MPI_Comm comm) {
  Handle fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  if (!fapl || H5Pset_fapl_mpio(fapl.get(), comm, MPI_INFO_NULL) < 0 ||
      H5Pset_all_coll_metadata_ops(fapl.get(), true) < 0 ||
      H5Pset_coll_metadata_write(fapl.get(), true) < 0)
    throw Error("cannot set up the MPI-IO file driver" + hdf5_suffix());
  return fapl;
}

Handle collective_dxpl() {
  Handle dxpl(H5Pcreate(H5P_DATASET_XFER), H5Pclose);
  if (!dxpl || H5Pset_dxpl_mpio(dxpl.get(), H5FD_MPIO_COLLECTIVE) < 0)
    throw Error("cannot set up collective transfers" + hdf5_suffix());
  return dxpl;
}

std::string dims_string(const std::vector<std::uint64_t>& dims) {
  std::ostringstream s;
  s << '[';
  for (std::size_t i = 0; i < dims.size(); ++i) s << (i ? ", " : "") << dims[i];
  s << ']';
  return s.str();
}

std::string type_name(hid_t type) {
  switch (H5Tget_class(type)) {
    case H5T_INTEGER: {
      const bool is_signed = H5Tget_sign(type) == H5T_SGN_2;
      return (is_signed ? "int" : "uint") + std::to_string(8 * H5Tget_size(type));
    }
    case H5T_FLOAT: return "float" + std::to_string(8 * H5Tget_size(type));
    case H5T_STRING: return "string";
    case H5T_COMPOUND: return "compound";
    case H5T_ENUM: return "enum";
    case H5T_BITFIELD: return "bitfield";
    case H5T_OPAQUE: return "opaque";
    case H5T_REFERENCE: return "reference";
    case H5T_VLEN: return "variable-length";
    case H5T_ARRAY: return "array";
    case H5T_TIME: return "time";
    default: return "unknown";
  }
}

ObjectKind object_kind(hid_t file, const std::string& path) {
  if (path == "/") return ObjectKind::Group;
  // Every link along the path must exist (H5Lexists fails, rather than
  // returning false, when a parent is missing).
  for (std::size_t slash = path.find('/', 1);; slash = path.find('/', slash + 1)) {
    const std::string prefix = path.substr(0, slash);
    if (H5Lexists(file, prefix.c_str(), H5P_DEFAULT) <= 0) {
      H5Eclear2(H5E_DEFAULT);
      return ObjectKind::Missing;
    }
    if (slash == std::string::npos) break;
  }
  if (H5Oexists_by_name(file, path.c_str(), H5P_DEFAULT) <= 0) {  // a dangling soft link
    H5Eclear2(H5E_DEFAULT);
    return ObjectKind::Missing;
  }
  Handle obj(H5Oopen(file, path.c_str(), H5P_DEFAULT), H5Oclose);
  if (!obj) {
    H5Eclear2(H5E_DEFAULT);
    return ObjectKind::Missing;
  }
  switch (H5Iget_type(obj.get())) {
    case H5I_DATASET: return ObjectKind::Dataset;
    case H5I_GROUP: return ObjectKind::Group;
    default: return ObjectKind::Other;
  }
}

Handle open_dataset(hid_t file, const std::string& file_name, const std::string& path) {
  switch (object_kind(file, path)) {
    case ObjectKind::Missing: throw Error(message(file_name, path, "no such dataset"));
    case ObjectKind::Group: throw Error(message(file_name, path, "is a group, not a dataset"));
    case ObjectKind::Other: throw Error(message(file_name, path, "is not a dataset"));
    case ObjectKind::Dataset: break;
  }
  Handle dset(H5Dopen2(file, path.c_str(), H5P_DEFAULT), H5Dclose);
  if (!dset) throw Error(message(file_name, path, "cannot open dataset" + hdf5_suffix()));
  return dset;
}

Handle open_object(hid_t file, const std::string& file_name, const std::string& path) {
  if (object_kind(file, path) == ObjectKind::Missing)
    throw Error(message(file_name, path, "no such object"));
  Handle obj(H5Oopen(file, path.c_str(), H5P_DEFAULT), H5Oclose);
  if (!obj) throw Error(message(file_name, path, "cannot open" + hdf5_suffix()));
  return obj;
}

std::vector<std::uint64_t> dataset_dims(hid_t dset) {
  Handle space(H5Dget_space(dset), H5Sclose);
  const int rank = space ? H5Sget_simple_extent_ndims(space.get()) : -1;
  if (rank < 0) return {};
  std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  return {dims.begin(), dims.end()};
}

std::string broadcast_string(MPI_Comm comm, const std::string& s) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  unsigned long long length = rank == 0 ? s.size() : 0;
  MPI_Bcast(&length, 1, MPI_UNSIGNED_LONG_LONG, 0, comm);
  std::string out(length, '\0');
  if (rank == 0) out = s;
  MPI_Bcast(out.data(), static_cast<int>(length), MPI_CHAR, 0, comm);
  return out;
}

}  // namespace tessera::io::detail
