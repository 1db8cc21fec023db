#include "h5_input.hpp"

#include <filesystem>
#include <system_error>

#include "h5_detail.hpp"

namespace tessera::io {

using detail::hdf5_suffix;

std::uint64_t DatasetInfo::elements() const {
  std::uint64_t n = 1;
  for (auto d : dims) n *= d;
  return n;
}

InputFile::InputFile(MPI_Comm comm, std::string path) : comm_(comm), path_(std::move(path)) {
  silence_hdf5_errors();
  MPI_Comm_rank(comm_, &rank_);
  std::string verdict;
  if (rank_ == 0) {
    namespace fs = std::filesystem;
    std::error_code ec;
    const auto st = fs::status(path_, ec);
    if (st.type() == fs::file_type::not_found) {
      verdict = "no such file";
    } else if (ec) {
      verdict = "cannot access: " + ec.message();
    } else if (st.type() == fs::file_type::directory) {
      verdict = "is a directory, not a file";
    } else {
      const htri_t is_hdf5 = H5Fis_hdf5(path_.c_str());
      if (is_hdf5 == 0) verdict = "not an HDF5 file";
      else if (is_hdf5 < 0) verdict = "cannot read" + hdf5_suffix();
    }
  }
  verdict = detail::broadcast_string(comm_, verdict);
  if (!verdict.empty()) throw Error(message(path_, "", verdict));

  Handle fapl = detail::mpio_fapl(comm_);
  file_ = Handle(H5Fopen(path_.c_str(), H5F_ACC_RDONLY, fapl.get()), H5Fclose);
  if (!file_) throw Error(message(path_, "", "cannot open" + hdf5_suffix()));
}

InputFile::~InputFile() = default;

bool InputFile::has(std::string_view dataset) {
  return detail::object_kind(file_.get(), detail::normalise_path(dataset)) ==
         detail::ObjectKind::Dataset;
}

DatasetInfo InputFile::describe(std::string_view dataset) {
  DatasetInfo info;
  info.name = detail::normalise_path(dataset);
  Handle dset = detail::open_dataset(file_.get(), path_, info.name);
  Handle type(H5Dget_type(dset.get()), H5Tclose);
  Handle space(H5Dget_space(dset.get()), H5Sclose);
  if (!type || !space)
    throw Error(message(path_, info.name, "cannot read the dataset's description" + hdf5_suffix()));
  info.dims = detail::dataset_dims(dset.get());
  info.type = detail::type_name(type.get());
  info.type_size = H5Tget_size(type.get());
  switch (H5Tget_class(type.get())) {
    case H5T_INTEGER: info.numeric = NumericClass::Integer; break;
    case H5T_FLOAT: info.numeric = NumericClass::Float; break;
    default: info.numeric = NumericClass::None; break;
  }
  if (H5Sget_simple_extent_type(space.get()) == H5S_NULL) info.dims = {0};  // no elements
  Handle dcpl(H5Dget_create_plist(dset.get()), H5Pclose);
  if (dcpl && H5Pget_layout(dcpl.get()) == H5D_CHUNKED && !info.dims.empty()) {
    std::vector<hsize_t> c(info.dims.size());
    if (H5Pget_chunk(dcpl.get(), int(c.size()), c.data()) == int(c.size()))
      info.chunk.assign(c.begin(), c.end());
  }
  return info;
}

DatasetInfo InputFile::require(std::string_view dataset, int rank, std::string_view what_dims) {
  DatasetInfo info = describe(dataset);
  if (!info.is_numeric())
    throw Error(message(path_, info.name,
                        "type " + info.type + " is not numeric (expected integers or floats)"));
  if (info.rank() != rank) {
    std::string what = "has " + std::to_string(info.rank()) + " dimension" +
                       (info.rank() == 1 ? "" : "s");
    if (info.rank() > 0) (what += ' ') += detail::dims_string(info.dims);
    (what += ", expected ") += std::to_string(rank);
    if (!what_dims.empty()) (what += ' ') += what_dims;
    throw Error(message(path_, info.name, what));
  }
  if (info.elements() == 0)
    throw Error(message(path_, info.name, "is empty (dimensions " + detail::dims_string(info.dims) + ")"));
  return info;
}

std::vector<double> InputFile::read_vector(std::string_view dataset) {
  const DatasetInfo info = require(dataset, 1);
  Handle dset = detail::open_dataset(file_.get(), path_, info.name);
  std::vector<double> values(info.dims[0]);
  Handle dxpl = detail::collective_dxpl();
  if (H5Dread(dset.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, dxpl.get(), values.data()) < 0)
    throw Error(message(path_, info.name, "cannot read" + hdf5_suffix()));
  return values;
}

std::vector<std::int64_t> InputFile::read_integers(std::string_view dataset, int rank,
                                                   std::string_view what_dims) {
  const DatasetInfo info = require(dataset, rank, what_dims);
  if (info.numeric != NumericClass::Integer)
    throw Error(message(path_, info.name, "has type " + info.type + ", expected an integer type"));
  Handle dset = detail::open_dataset(file_.get(), path_, info.name);
  std::vector<std::int64_t> values(info.elements());
  Handle dxpl = detail::collective_dxpl();
  if (H5Dread(dset.get(), H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, dxpl.get(), values.data()) < 0)
    throw Error(message(path_, info.name, "cannot read" + hdf5_suffix()));
  return values;
}

void InputFile::read_frames(std::string_view dataset, std::span<const std::int64_t> frames,
                            std::span<float> out) {
  read_frames_as(dataset, frames, out.data(), out.size(), H5T_NATIVE_FLOAT);
}

void InputFile::read_frames(std::string_view dataset, std::span<const std::int64_t> frames,
                            std::span<double> out) {
  read_frames_as(dataset, frames, out.data(), out.size(), H5T_NATIVE_DOUBLE);
}

void InputFile::read_frames_as(std::string_view dataset, std::span<const std::int64_t> frames, void* out,
                               std::size_t out_size, hid_t mem_type) {
  const DatasetInfo info = require(dataset, 3);
  const std::uint64_t plane = info.dims[1] * info.dims[2];
  std::string error;
  for (std::size_t i = 0; i < frames.size() && error.empty(); ++i)
    if (frames[i] < 0 || std::uint64_t(frames[i]) >= info.dims[0] || (i > 0 && frames[i] <= frames[i - 1]))
      error = message(path_, info.name,
                      "frame list not strictly increasing within [0, " +
                          std::to_string(info.dims[0]) + ") at " + std::to_string(frames[i]));
  if (error.empty() && out_size != frames.size() * plane)
    error = message(path_, info.name,
                    "buffer holds " + std::to_string(out_size) + " values, the frames need " +
                        std::to_string(frames.size() * plane));
  throw_if_any(comm_, error);

  Handle dset = detail::open_dataset(file_.get(), path_, info.name);
  Handle file_space(H5Dget_space(dset.get()), H5Sclose);
  const hsize_t n = hsize_t(out_size);
  const hsize_t mem_n = n == 0 ? 1 : n;
  Handle mem_space(H5Screate_simple(1, &mem_n, nullptr), H5Sclose);
  if (!file_space || !mem_space) throw Error(message(path_, info.name, "cannot select frames" + hdf5_suffix()));
  if (n == 0) {
    if (H5Sselect_none(file_space.get()) < 0 || H5Sselect_none(mem_space.get()) < 0)
      throw Error(message(path_, info.name, "cannot select frames" + hdf5_suffix()));
  } else {
    if (H5Sselect_none(file_space.get()) < 0)
      throw Error(message(path_, info.name, "cannot select frames" + hdf5_suffix()));
    // Runs of consecutive frames as one block each; the union is read in file
    // order, which is the order of `frames`.
    for (std::size_t i = 0; i < frames.size();) {
      std::size_t j = i + 1;
      while (j < frames.size() && frames[j] == frames[j - 1] + 1) ++j;
      const hsize_t start[3] = {hsize_t(frames[i]), 0, 0};
      const hsize_t count[3] = {hsize_t(j - i), info.dims[1], info.dims[2]};
      if (H5Sselect_hyperslab(file_space.get(), H5S_SELECT_OR, start, nullptr, count, nullptr) < 0)
        throw Error(message(path_, info.name, "cannot select frames" + hdf5_suffix()));
      i = j;
    }
  }
  Handle dxpl = detail::collective_dxpl();
  double dummy = 0.0;  // room for one value of either memory type
  if (H5Dread(dset.get(), mem_type, mem_space.get(), file_space.get(), dxpl.get(), n == 0 ? &dummy : out) < 0)
    throw Error(message(path_, info.name, "cannot read" + hdf5_suffix()));
}

std::uint64_t InputFile::read_slab(std::string_view dataset, const Block& block,
                                   std::span<float> out) {
  const DatasetInfo info = require(dataset, 3, "[n_sweep, ny, nx]");
  read_hyperslab(info.name, info.dims, block, out, info.dims[0]);
  return info.dims[0];
}

void InputFile::read_block(std::string_view dataset, const Block& block, std::span<float> out) {
  const DatasetInfo info = require(dataset, 2, "[ny, nx]");
  read_hyperslab(info.name, info.dims, block, out, 0);
}

// dims: [ny, nx] (leading == 0) or [n, ny, nx] (leading == n).
void InputFile::read_hyperslab(const std::string& name, const std::vector<std::uint64_t>& dims,
                               const Block& block, std::span<float> out,
                               std::uint64_t leading) {
  const bool cube = dims.size() == 3;
  const auto ny = static_cast<std::int64_t>(dims[cube ? 1 : 0]);
  const auto nx = static_cast<std::int64_t>(dims[cube ? 2 : 1]);
  const std::uint64_t frames = cube ? leading : 1;

  // This rank's arguments, agreed before the collective read.
  std::string error;
  if (block.y0 < 0 || block.y0 > block.y1 || block.y1 > ny || block.x0 < 0 ||
      block.x0 > block.x1 || block.x1 > nx) {
    error = message(path_, name,
                    "block rows " + std::to_string(block.y0) + ":" + std::to_string(block.y1) +
                        ", columns " + std::to_string(block.x0) + ":" + std::to_string(block.x1) +
                        " outside the dataset " + detail::dims_string(dims));
  } else if (out.size() != frames * static_cast<std::uint64_t>(block.pixels())) {
    error = message(path_, name,
                    "buffer holds " + std::to_string(out.size()) + " values, the block needs " +
                        std::to_string(frames * static_cast<std::uint64_t>(block.pixels())));
  }
  throw_if_any(comm_, error);

  Handle dset = detail::open_dataset(file_.get(), path_, name);
  Handle file_space(H5Dget_space(dset.get()), H5Sclose);
  const std::uint64_t n = frames * static_cast<std::uint64_t>(block.pixels());
  Handle mem_space;
  if (n == 0) {
    const hsize_t one = 1;
    mem_space = Handle(H5Screate_simple(1, &one, nullptr), H5Sclose);
    if (!file_space || !mem_space || H5Sselect_none(file_space.get()) < 0 ||
        H5Sselect_none(mem_space.get()) < 0)
      throw Error(message(path_, name, "cannot select an empty block" + hdf5_suffix()));
  } else {
    std::vector<hsize_t> start, count;
    if (cube) start.push_back(0), count.push_back(frames);
    start.push_back(static_cast<hsize_t>(block.y0));
    start.push_back(static_cast<hsize_t>(block.x0));
    count.push_back(static_cast<hsize_t>(block.rows()));
    count.push_back(static_cast<hsize_t>(block.cols()));
    mem_space = Handle(H5Screate_simple(static_cast<int>(count.size()), count.data(), nullptr),
                       H5Sclose);
    if (!file_space || !mem_space ||
        H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start.data(), nullptr,
                            count.data(), nullptr) < 0)
      throw Error(message(path_, name, "cannot select the block" + hdf5_suffix()));
  }
  Handle dxpl = detail::collective_dxpl();
  float dummy = 0.0f;
  if (H5Dread(dset.get(), H5T_NATIVE_FLOAT, mem_space.get(), file_space.get(), dxpl.get(),
              n == 0 ? &dummy : out.data()) < 0)
    throw Error(message(path_, name, "cannot read" + hdf5_suffix()));
}

bool InputFile::has_attribute(std::string_view object, std::string_view name) {
  const std::string obj_path = detail::normalise_path(object);
  Handle obj = detail::open_object(file_.get(), path_, obj_path);
  const htri_t exists = H5Aexists(obj.get(), std::string(name).c_str());
  H5Eclear2(H5E_DEFAULT);
  return exists > 0;
}

namespace {

Handle open_attribute(hid_t file, const std::string& file_name, std::string_view object,
                      std::string_view name, std::string& where) {
  const std::string obj_path = detail::normalise_path(object);
  where = obj_path + " attribute '" + std::string(name) + "'";
  Handle obj = detail::open_object(file, file_name, obj_path);
  if (H5Aexists(obj.get(), std::string(name).c_str()) <= 0) {
    H5Eclear2(H5E_DEFAULT);
    throw Error(message(file_name, where, "no such attribute"));
  }
  Handle attr(H5Aopen(obj.get(), std::string(name).c_str(), H5P_DEFAULT), H5Aclose);
  if (!attr) throw Error(message(file_name, where, "cannot open" + hdf5_suffix()));
  return attr;
}

}  // namespace

std::string InputFile::read_attribute_string(std::string_view object, std::string_view name) {
  std::string where;
  Handle attr = open_attribute(file_.get(), path_, object, name, where);
  Handle type(H5Aget_type(attr.get()), H5Tclose);
  Handle space(H5Aget_space(attr.get()), H5Sclose);
  if (!type || H5Tget_class(type.get()) != H5T_STRING)
    throw Error(message(path_, where, "is not a string"));
  if (H5Sget_simple_extent_npoints(space.get()) != 1)
    throw Error(message(path_, where, "holds more than one string"));
  if (H5Tis_variable_str(type.get()) > 0) {
    Handle mem(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(mem.get(), H5T_VARIABLE);
    H5Tset_cset(mem.get(), H5Tget_cset(type.get()));
    char* text = nullptr;
    if (H5Aread(attr.get(), mem.get(), &text) < 0)
      throw Error(message(path_, where, "cannot read" + hdf5_suffix()));
    std::string s = text != nullptr ? text : "";
    H5free_memory(text);
    return s;
  }
  std::string s(H5Tget_size(type.get()), '\0');
  if (H5Aread(attr.get(), type.get(), s.data()) < 0)
    throw Error(message(path_, where, "cannot read" + hdf5_suffix()));
  while (!s.empty() && (s.back() == '\0' || s.back() == ' ')) s.pop_back();  // padding
  return s;
}

std::vector<std::string> InputFile::read_attribute_strings(std::string_view object,
                                                          std::string_view name) {
  std::string where;
  Handle attr = open_attribute(file_.get(), path_, object, name, where);
  Handle type(H5Aget_type(attr.get()), H5Tclose);
  Handle space(H5Aget_space(attr.get()), H5Sclose);
  if (!type || H5Tget_class(type.get()) != H5T_STRING)
    throw Error(message(path_, where, "is not a string"));
  if (H5Tis_variable_str(type.get()) <= 0) return {read_attribute_string(object, name)};
  const hssize_t n = H5Sget_simple_extent_npoints(space.get());
  std::vector<char*> texts(n > 0 ? static_cast<std::size_t>(n) : 0, nullptr);
  Handle mem(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(mem.get(), H5T_VARIABLE);
  H5Tset_cset(mem.get(), H5Tget_cset(type.get()));
  if (!texts.empty() && H5Aread(attr.get(), mem.get(), texts.data()) < 0)
    throw Error(message(path_, where, "cannot read" + hdf5_suffix()));
  std::vector<std::string> out;
  for (char* t : texts) {
    out.emplace_back(t != nullptr ? t : "");
    H5free_memory(t);
  }
  return out;
}

std::vector<double> InputFile::read_attribute_doubles(std::string_view object,
                                                      std::string_view name) {
  std::string where;
  Handle attr = open_attribute(file_.get(), path_, object, name, where);
  Handle type(H5Aget_type(attr.get()), H5Tclose);
  Handle space(H5Aget_space(attr.get()), H5Sclose);
  const H5T_class_t cls = type ? H5Tget_class(type.get()) : H5T_NO_CLASS;
  if (cls != H5T_INTEGER && cls != H5T_FLOAT) throw Error(message(path_, where, "is not numeric"));
  const hssize_t n = H5Sget_simple_extent_npoints(space.get());
  std::vector<double> values(n > 0 ? static_cast<std::size_t>(n) : 0);
  if (!values.empty() && H5Aread(attr.get(), H5T_NATIVE_DOUBLE, values.data()) < 0)
    throw Error(message(path_, where, "cannot read" + hdf5_suffix()));
  return values;
}

}  // namespace tessera::io
