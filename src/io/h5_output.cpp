#include "h5_output.hpp"

#include <filesystem>
#include <system_error>

#include "h5_detail.hpp"
#include "mpi/collectives.hpp"

namespace tessera::io {

using detail::hdf5_suffix;
namespace fs = std::filesystem;

namespace {

template <class T> hid_t native_type();
template <> hid_t native_type<float>() { return H5T_NATIVE_FLOAT; }
template <> hid_t native_type<double>() { return H5T_NATIVE_DOUBLE; }
template <> hid_t native_type<std::int32_t>() { return H5T_NATIVE_INT32; }
template <> hid_t native_type<std::int64_t>() { return H5T_NATIVE_INT64; }
template <> hid_t native_type<std::uint8_t>() { return H5T_NATIVE_UINT8; }
template <> hid_t native_type<std::uint16_t>() { return H5T_NATIVE_UINT16; }
template <> hid_t native_type<std::uint32_t>() { return H5T_NATIVE_UINT32; }

hid_t file_type(DType t) {
  switch (t) {
    case DType::UInt8: return H5T_STD_U8LE;
    case DType::UInt16: return H5T_STD_U16LE;
    case DType::UInt32: return H5T_STD_U32LE;
    case DType::Int32: return H5T_STD_I32LE;
    case DType::Int64: return H5T_STD_I64LE;
    case DType::Float32: return H5T_IEEE_F32LE;
    case DType::Float64: return H5T_IEEE_F64LE;
  }
  return H5T_IEEE_F64LE;
}

std::uint64_t product(const std::vector<std::uint64_t>& v, std::size_t from = 0) {
  std::uint64_t n = 1;
  for (std::size_t i = from; i < v.size(); ++i) n *= v[i];
  return n;
}

// Object creation lists without modification times (reproducible bytes).
Handle untimed(hid_t cls) {
  Handle plist(H5Pcreate(cls), H5Pclose);
  if (plist) H5Pset_obj_track_times(plist.get(), false);
  return plist;
}

Handle utf8_string_type() {
  Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.get(), H5T_VARIABLE);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  return type;
}

}  // namespace

OutputFile::OutputFile(MPI_Comm comm, std::string path, bool force)
    : comm_(comm), path_(std::move(path)), partial_(path_ + ".partial"), force_(force) {
  silence_hdf5_errors();
  MPI_Comm_rank(comm_, &rank_);
  std::string verdict;
  if (rank_ == 0) {
    std::error_code ec;
    const auto st = fs::status(path_, ec);
    const fs::path parent = fs::path(path_).parent_path();
    if (fs::is_directory(st)) {
      verdict = "is a directory";
    } else if (fs::exists(st) && !force_) {
      verdict = "exists already (--force overwrites it)";
    } else if (!parent.empty() && !fs::is_directory(parent, ec)) {
      verdict = "directory '" + parent.string() + "' does not exist";
    } else if (fs::exists(fs::symlink_status(partial_, ec)) && !fs::remove(partial_, ec)) {
      verdict = "cannot remove the stale '" + partial_ + "': " + ec.message();
    }
  }
  verdict = detail::broadcast_string(comm_, verdict);
  if (!verdict.empty()) throw Error(message(path_, "", verdict));

  Handle fapl = detail::mpio_fapl(comm_);
  Handle fcpl = untimed(H5P_FILE_CREATE);
  file_ = Handle(H5Fcreate(partial_.c_str(), H5F_ACC_TRUNC, fcpl.get(), fapl.get()), H5Fclose);
  if (!file_) {
    const std::string reason = hdf5_suffix();
    MPI_Barrier(comm_);
    remove_partial();
    throw Error(message(partial_, "", "cannot create" + reason));
  }
}

OutputFile::~OutputFile() {
  if (committed_) return;
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) {
    file_.release();  // the MPI-IO file cannot be closed any more
  } else {
    file_.reset();
    MPI_Barrier(comm_);
  }
  remove_partial();
}

void OutputFile::remove_partial() {
  if (rank_ != 0) return;
  std::error_code ec;
  fs::remove(partial_, ec);
}

std::string OutputFile::at(const std::string& dataset, const std::string& what) const {
  return message(path_, dataset, what);
}

void OutputFile::create_group(std::string_view group) {
  const std::string name = detail::normalise_path(group);
  if (!file_) throw Error(at(name, "the file is closed"));
  Handle gcpl = untimed(H5P_GROUP_CREATE);
  for (std::size_t slash = name.find('/', 1);; slash = name.find('/', slash + 1)) {
    const std::string prefix = name.substr(0, slash);
    if (prefix.size() > 1) {
      switch (detail::object_kind(file_.get(), prefix)) {
        case detail::ObjectKind::Group: break;
        case detail::ObjectKind::Missing: {
          Handle g(H5Gcreate2(file_.get(), prefix.c_str(), H5P_DEFAULT, gcpl.get(), H5P_DEFAULT),
                   H5Gclose);
          if (!g) throw Error(at(prefix, "cannot create group" + hdf5_suffix()));
          break;
        }
        default: throw Error(at(prefix, "exists and is not a group"));
      }
    }
    if (slash == std::string::npos) break;
  }
}

void OutputFile::create_dataset(std::string_view dataset, DType type,
                                const std::vector<std::uint64_t>& dims, const Storage& storage) {
  const std::string name = detail::normalise_path(dataset);
  if (name == "/") throw Error(at(name, "is not a dataset name"));
  create_group(name.substr(0, name.rfind('/')));
  if (detail::object_kind(file_.get(), name) != detail::ObjectKind::Missing)
    throw Error(at(name, "exists already"));
  const std::vector<hsize_t> hdims(dims.begin(), dims.end());
  Handle space(dims.empty() ? H5Screate(H5S_SCALAR)
                            : H5Screate_simple(static_cast<int>(dims.size()), hdims.data(), nullptr),
               H5Sclose);
  Handle dcpl = untimed(H5P_DATASET_CREATE);
  bool ok = space && dcpl && H5Pset_fill_time(dcpl.get(), H5D_FILL_TIME_NEVER) >= 0;
  if (storage.chunk.empty()) {
    ok = ok && H5Pset_layout(dcpl.get(), H5D_CONTIGUOUS) >= 0 &&
         H5Pset_alloc_time(dcpl.get(), H5D_ALLOC_TIME_EARLY) >= 0;
  } else {
    const std::vector<hsize_t> chunk(storage.chunk.begin(), storage.chunk.end());
    ok = ok && chunk.size() == hdims.size() && H5Pset_chunk(dcpl.get(), int(chunk.size()), chunk.data()) >= 0;
    if (storage.deflate > 0)
      ok = ok && H5Pset_shuffle(dcpl.get()) >= 0 && H5Pset_deflate(dcpl.get(), unsigned(storage.deflate)) >= 0;
  }
  if (!ok) throw Error(at(name, "cannot set up the dataset" + hdf5_suffix()));
  Handle dset(H5Dcreate2(file_.get(), name.c_str(), file_type(type), space.get(), H5P_DEFAULT,
                         dcpl.get(), H5P_DEFAULT),
              H5Dclose);
  if (!dset) throw Error(at(name, "cannot create dataset" + hdf5_suffix()));
}

std::vector<std::uint64_t> OutputFile::dims_of(const std::string& name) {
  if (!file_) throw Error(at(name, "the file is closed"));
  Handle dset = detail::open_dataset(file_.get(), path_, name);
  return detail::dataset_dims(dset.get());
}

template <class T>
void OutputFile::write_rows(std::string_view dataset, std::int64_t row0, std::int64_t row1,
                            std::span<const T> data) {
  const std::string name = detail::normalise_path(dataset);
  const auto dims = dims_of(name);
  std::string error;
  if (dims.empty()) {
    error = at(name, "is a scalar, it has no rows");
  } else if (row0 < 0 || row1 < row0 || static_cast<std::uint64_t>(row1) > dims[0]) {
    error = at(name, "rows " + std::to_string(row0) + ":" + std::to_string(row1) +
                         " outside the dataset " + detail::dims_string(dims));
  } else if (data.size() != static_cast<std::uint64_t>(row1 - row0) * product(dims, 1)) {
    error = at(name, std::to_string(data.size()) + " values given for rows " +
                         std::to_string(row0) + ":" + std::to_string(row1) + " of " +
                         detail::dims_string(dims));
  }
  throw_if_any(comm_, error);
  std::vector<std::uint64_t> start(dims.size(), 0), count = dims;
  start[0] = static_cast<std::uint64_t>(row0);
  count[0] = static_cast<std::uint64_t>(row1 - row0);
  write_hyperslab(name, start, count, native_type<T>(), data.data(), data.size(), true);
}

template <class T>
void OutputFile::write_slab(std::string_view dataset, std::int64_t y0, std::int64_t y1,
                            std::span<const T> data) {
  const std::string name = detail::normalise_path(dataset);
  const auto dims = dims_of(name);
  std::string error;
  if (dims.size() != 3) {
    error = at(name, "write_slab needs a 3-D dataset, this one is " + detail::dims_string(dims));
  } else if (y0 < 0 || y1 < y0 || static_cast<std::uint64_t>(y1) > dims[1]) {
    error = at(name, "rows " + std::to_string(y0) + ":" + std::to_string(y1) +
                         " outside the dataset " + detail::dims_string(dims));
  } else if (data.size() != dims[0] * static_cast<std::uint64_t>(y1 - y0) * dims[2]) {
    error = at(name, std::to_string(data.size()) + " values given for rows " +
                         std::to_string(y0) + ":" + std::to_string(y1) + " of " +
                         detail::dims_string(dims));
  }
  throw_if_any(comm_, error);
  const std::vector<std::uint64_t> start{0, static_cast<std::uint64_t>(y0), 0};
  const std::vector<std::uint64_t> count{dims[0], static_cast<std::uint64_t>(y1 - y0), dims[2]};
  write_hyperslab(name, start, count, native_type<T>(), data.data(), data.size(), true);
}

template <class T>
void OutputFile::write_all(std::string_view dataset, std::span<const T> data) {
  const std::string name = detail::normalise_path(dataset);
  const auto dims = dims_of(name);
  std::string error;
  if (rank_ == 0 && data.size() != product(dims))
    error = at(name, std::to_string(data.size()) + " values given for the whole dataset " +
                         detail::dims_string(dims));
  throw_if_any(comm_, error);
  const std::vector<std::uint64_t> start(dims.size(), 0);
  write_hyperslab(name, start, dims, native_type<T>(), data.data(), data.size(), rank_ == 0);
}

void OutputFile::write_hyperslab(const std::string& name, const std::vector<std::uint64_t>& start,
                                 const std::vector<std::uint64_t>& count, hid_t mem_type,
                                 const void* data, std::size_t n, bool active) {
  Handle dset = detail::open_dataset(file_.get(), path_, name);
  Handle file_space(H5Dget_space(dset.get()), H5Sclose);
  Handle mem_space;
  bool ok = static_cast<bool>(file_space);
  if (!active || n == 0) {
    const hsize_t one = 1;
    mem_space = Handle(H5Screate_simple(1, &one, nullptr), H5Sclose);
    ok = ok && mem_space && H5Sselect_none(file_space.get()) >= 0 &&
         H5Sselect_none(mem_space.get()) >= 0;
  } else if (count.empty()) {  // a scalar dataset
    mem_space = Handle(H5Screate(H5S_SCALAR), H5Sclose);
    ok = ok && mem_space;
  } else {
    const std::vector<hsize_t> hstart(start.begin(), start.end()), hcount(count.begin(), count.end());
    mem_space = Handle(H5Screate_simple(static_cast<int>(hcount.size()), hcount.data(), nullptr),
                       H5Sclose);
    ok = ok && mem_space &&
         H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, hstart.data(), nullptr,
                             hcount.data(), nullptr) >= 0;
  }
  if (!ok) throw Error(at(name, "cannot select the rows to write" + hdf5_suffix()));
  Handle dxpl = detail::collective_dxpl();
  const double dummy = 0.0;
  if (H5Dwrite(dset.get(), mem_type, mem_space.get(), file_space.get(), dxpl.get(),
               (!active || n == 0) ? &dummy : data) < 0)
    throw Error(at(name, "cannot write" + hdf5_suffix()));
}

void OutputFile::write_attribute_raw(std::string_view object, std::string_view name,
                                     hid_t type, hid_t mem_type, hid_t space, const void* data) {
  const std::string obj_path = detail::normalise_path(object);
  const std::string attr_name(name);
  const std::string where = obj_path + " attribute '" + attr_name + "'";
  if (!file_) throw Error(at(where, "the file is closed"));
  Handle obj = detail::open_object(file_.get(), path_, obj_path);
  if (H5Aexists(obj.get(), attr_name.c_str()) > 0 && H5Adelete(obj.get(), attr_name.c_str()) < 0)
    throw Error(at(where, "cannot replace" + hdf5_suffix()));
  Handle attr(H5Acreate2(obj.get(), attr_name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT),
              H5Aclose);
  if (!attr || H5Awrite(attr.get(), mem_type, data) < 0)
    throw Error(at(where, "cannot write" + hdf5_suffix()));
}

void OutputFile::write_attribute(std::string_view object, std::string_view name,
                                 std::string_view value) {
  Handle type = utf8_string_type();
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  const std::string text(value);
  const char* ptr = text.c_str();
  write_attribute_raw(object, name, type.get(), type.get(), space.get(), &ptr);
}

void OutputFile::write_attribute(std::string_view object, std::string_view name,
                                 const std::vector<std::string>& values) {
  Handle type = utf8_string_type();
  const hsize_t n = values.size();
  Handle space(H5Screate_simple(1, &n, nullptr), H5Sclose);
  std::vector<const char*> ptrs;
  for (const auto& v : values) ptrs.push_back(v.c_str());
  const char* none = "";
  write_attribute_raw(object, name, type.get(), type.get(), space.get(),
                      ptrs.empty() ? &none : ptrs.data());
}

void OutputFile::write_attribute(std::string_view object, std::string_view name, double value) {
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  write_attribute_raw(object, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, space.get(), &value);
}

void OutputFile::write_attribute(std::string_view object, std::string_view name,
                                 const std::vector<double>& values) {
  const hsize_t n = values.size();
  Handle space(H5Screate_simple(1, &n, nullptr), H5Sclose);
  const double none = 0.0;
  write_attribute_raw(object, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, space.get(),
                      values.empty() ? &none : values.data());
}

void OutputFile::write_attribute(std::string_view object, std::string_view name,
                                 std::int64_t value) {
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  write_attribute_raw(object, name, H5T_STD_I64LE, H5T_NATIVE_INT64, space.get(), &value);
}

void OutputFile::commit() {
  if (committed_) return;
  std::string error;
  if (!file_) error = at("", "the file is closed");
  else if (file_.reset() < 0) error = message(partial_, "", "cannot close" + hdf5_suffix());
  error = mpi::agree_error(comm_, error);
  MPI_Barrier(comm_);  // every rank has closed before the rename
  if (rank_ == 0 && error.empty()) {
    std::error_code ec;
    if (!force_ && fs::exists(fs::symlink_status(path_, ec))) {
      error = at("", "exists already (--force overwrites it)");
    } else {
      fs::rename(partial_, path_, ec);
      if (ec) error = at("", "cannot rename '" + partial_ + "': " + ec.message());
    }
  }
  error = detail::broadcast_string(comm_, error);
  if (!error.empty()) {
    remove_partial();
    throw Error(error);
  }
  committed_ = true;
}

#define TESSERA_IO_INSTANTIATE(T)                                                              \
  template void OutputFile::write_rows<T>(std::string_view, std::int64_t, std::int64_t,        \
                                          std::span<const T>);                                 \
  template void OutputFile::write_slab<T>(std::string_view, std::int64_t, std::int64_t,        \
                                          std::span<const T>);                                 \
  template void OutputFile::write_all<T>(std::string_view, std::span<const T>);
TESSERA_IO_INSTANTIATE(float)
TESSERA_IO_INSTANTIATE(double)
TESSERA_IO_INSTANTIATE(std::int32_t)
TESSERA_IO_INSTANTIATE(std::int64_t)
TESSERA_IO_INSTANTIATE(std::uint8_t)
TESSERA_IO_INSTANTIATE(std::uint16_t)
TESSERA_IO_INSTANTIATE(std::uint32_t)
#undef TESSERA_IO_INSTANTIATE

}  // namespace tessera::io
