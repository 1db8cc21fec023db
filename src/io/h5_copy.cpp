#include "h5_copy.hpp"

#include <algorithm>
#include <string_view>

#include "h5_detail.hpp"

namespace tessera::io {

using detail::hdf5_suffix;

namespace {

herr_t visit(hid_t, const char* name, const H5O_info_t* info, void* data) {
  auto* list = static_cast<ObjectList*>(data);
  std::string path = "/";
  if (std::string_view(name) != ".") path.append(name);
  if (info->type == H5O_TYPE_GROUP) list->groups.push_back(path);
  if (info->type == H5O_TYPE_DATASET) list->datasets.push_back(path);
  return 0;
}

herr_t collect_name(hid_t, const char* name, const H5A_info_t*, void* data) {
  static_cast<std::vector<std::string>*>(data)->push_back(name);
  return 0;
}

std::uint64_t product(const std::vector<std::uint64_t>& v) {
  std::uint64_t n = 1;
  for (auto d : v) n *= d;
  return n;
}

}  // namespace

ObjectList list_objects(hid_t file, const std::string& file_name) {
  ObjectList list;
  if (H5Ovisit(file, H5_INDEX_NAME, H5_ITER_INC, visit, &list) < 0)
    throw Error(message(file_name, "", "cannot list the objects" + hdf5_suffix()));
  std::sort(list.groups.begin(), list.groups.end());
  std::sort(list.datasets.begin(), list.datasets.end());
  return list;
}

std::vector<std::string> attribute_names(hid_t file, const std::string& file_name,
                                         const std::string& object) {
  Handle obj = detail::open_object(file, file_name, detail::normalise_path(object));
  std::vector<std::string> names;
  hsize_t index = 0;
  if (H5Aiterate2(obj.get(), H5_INDEX_NAME, H5_ITER_INC, &index, collect_name, &names) < 0)
    throw Error(message(file_name, object, "cannot list the attributes" + hdf5_suffix()));
  return names;
}

RawDataset read_raw(hid_t file, const std::string& file_name, const std::string& dataset) {
  Handle dset = detail::open_dataset(file, file_name, dataset);
  Handle type(H5Dget_type(dset.get()), H5Tclose);
  if (!type) throw Error(message(file_name, dataset, "cannot read the type" + hdf5_suffix()));
  RawDataset raw;
  raw.dims = detail::dataset_dims(dset.get());
  raw.type = detail::type_name(type.get());
  const H5T_class_t cls = H5Tget_class(type.get());
  if (cls != H5T_INTEGER && cls != H5T_FLOAT)
    throw Error(message(file_name, dataset, "has type " + raw.type + ", not a number"));
  raw.bytes.resize(product(raw.dims) * H5Tget_size(type.get()));
  if (!raw.bytes.empty() &&
      H5Dread(dset.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, raw.bytes.data()) < 0)
    throw Error(message(file_name, dataset, "cannot read" + hdf5_suffix()));
  return raw;
}

std::optional<DType> dtype_of(const std::string& type) {
  if (type == "uint8") return DType::UInt8;
  if (type == "uint16") return DType::UInt16;
  if (type == "uint32") return DType::UInt32;
  if (type == "int32") return DType::Int32;
  if (type == "int64") return DType::Int64;
  if (type == "float32") return DType::Float32;
  if (type == "float64") return DType::Float64;
  return std::nullopt;
}

void write_raw_rows(hid_t file, const std::string& file_name, const std::string& dataset,
                    std::uint64_t row0, const RawDataset& data) {
  Handle dset = detail::open_dataset(file, file_name, dataset);
  Handle type(H5Dget_type(dset.get()), H5Tclose);
  const auto dims = detail::dataset_dims(dset.get());
  const bool same_shape = dims.size() == data.dims.size() && !dims.empty() &&
                          std::equal(dims.begin() + 1, dims.end(), data.dims.begin() + 1) &&
                          row0 + data.dims[0] <= dims[0];
  if (!type || detail::type_name(type.get()) != data.type || !same_shape)
    throw Error(message(file_name, dataset, "rows of " + data.type + " " +
                                                detail::dims_string(data.dims) + " do not fit " +
                                                detail::dims_string(dims) + " at row " +
                                                std::to_string(row0)));
  if (data.dims[0] == 0) return;
  std::vector<hsize_t> start(dims.size(), 0), count(data.dims.begin(), data.dims.end());
  start[0] = row0;
  Handle file_space(H5Dget_space(dset.get()), H5Sclose);
  Handle mem_space(H5Screate_simple(int(count.size()), count.data(), nullptr), H5Sclose);
  if (!file_space || !mem_space ||
      H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(),
                          nullptr) < 0 ||
      H5Dwrite(dset.get(), type.get(), mem_space.get(), file_space.get(), H5P_DEFAULT,
               data.bytes.data()) < 0)
    throw Error(message(file_name, dataset, "cannot write" + hdf5_suffix()));
}

void copy_attribute(hid_t from, const std::string& from_name, hid_t to, const std::string& to_name,
                    const std::string& object, const std::string& name) {
  const std::string obj_path = detail::normalise_path(object);
  const std::string where = obj_path + " attribute '" + name + "'";
  Handle src_obj = detail::open_object(from, from_name, obj_path);
  Handle attr(H5Aopen(src_obj.get(), name.c_str(), H5P_DEFAULT), H5Aclose);
  Handle type(attr ? H5Aget_type(attr.get()) : H5I_INVALID_HID, H5Tclose);
  Handle space(attr ? H5Aget_space(attr.get()) : H5I_INVALID_HID, H5Sclose);
  if (!attr || !type || !space) throw Error(message(from_name, where, "cannot open" + hdf5_suffix()));
  const hssize_t n = H5Sget_simple_extent_npoints(space.get());
  std::vector<unsigned char> buffer(std::max<std::size_t>(1, std::size_t(n) * H5Tget_size(type.get())));
  if (H5Aread(attr.get(), type.get(), buffer.data()) < 0)
    throw Error(message(from_name, where, "cannot read" + hdf5_suffix()));
  // Variable-length strings are read as pointers that HDF5 allocated.
  const bool variable = H5Tdetect_class(type.get(), H5T_VLEN) > 0 || H5Tis_variable_str(type.get()) > 0;
  std::string error;
  Handle dst_obj = detail::open_object(to, to_name, obj_path);
  if (H5Aexists(dst_obj.get(), name.c_str()) > 0) H5Adelete(dst_obj.get(), name.c_str());
  Handle out(H5Acreate2(dst_obj.get(), name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT),
             H5Aclose);
  if (!out || H5Awrite(out.get(), type.get(), buffer.data()) < 0)
    error = message(to_name, where, "cannot write" + hdf5_suffix());
  if (variable) H5Dvlen_reclaim(type.get(), space.get(), H5P_DEFAULT, buffer.data());
  if (!error.empty()) throw Error(error);
}

void overwrite_attribute(hid_t file, const std::string& file_name, const std::string& object,
                         const std::string& name, const std::vector<double>& values) {
  const std::string obj_path = detail::normalise_path(object);
  const std::string where = obj_path + " attribute '" + name + "'";
  Handle obj = detail::open_object(file, file_name, obj_path);
  Handle attr(H5Aopen(obj.get(), name.c_str(), H5P_DEFAULT), H5Aclose);
  Handle space(attr ? H5Aget_space(attr.get()) : H5I_INVALID_HID, H5Sclose);
  if (!attr || !space) throw Error(message(file_name, where, "cannot open" + hdf5_suffix()));
  if (H5Sget_simple_extent_npoints(space.get()) != hssize_t(values.size()))
    throw Error(message(file_name, where, "holds " + std::to_string(H5Sget_simple_extent_npoints(space.get())) +
                                              " values, not " + std::to_string(values.size())));
  if (!values.empty() && H5Awrite(attr.get(), H5T_NATIVE_DOUBLE, values.data()) < 0)
    throw Error(message(file_name, where, "cannot write" + hdf5_suffix()));
}

}  // namespace tessera::io
