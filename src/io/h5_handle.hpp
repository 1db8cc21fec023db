// RAII ownership of an HDF5 identifier (hid_t): the identifier is closed with
// the function it was made for when the Handle goes out of scope. Move-only.
//
//   io::Handle space(H5Dget_space(dset), H5Sclose);
//   if (!space) throw ...;
//
// Closing a file (H5Fclose) with the MPI-IO driver is collective: a Handle that
// owns a file must be destroyed on every rank of the file's communicator.
#pragma once

#include <hdf5.h>

#include <utility>

namespace tessera::io {

class Handle {
 public:
  using Closer = herr_t (*)(hid_t);

  Handle() = default;
  Handle(hid_t id, Closer close) : id_(id), close_(close) {}
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  Handle(Handle&& other) noexcept
      : id_(std::exchange(other.id_, H5I_INVALID_HID)), close_(other.close_) {}
  Handle& operator=(Handle&& other) noexcept {
    if (this != &other) {
      reset();
      id_ = std::exchange(other.id_, H5I_INVALID_HID);
      close_ = other.close_;
    }
    return *this;
  }
  ~Handle() { reset(); }

  [[nodiscard]] hid_t get() const { return id_; }
  [[nodiscard]] bool valid() const { return id_ >= 0; }
  explicit operator bool() const { return valid(); }

  // Gives up ownership without closing.
  hid_t release() { return std::exchange(id_, H5I_INVALID_HID); }

  // Closes now; returns the closer's status (0 when there was nothing to close).
  herr_t reset() {
    herr_t status = 0;
    if (id_ >= 0 && close_ != nullptr) status = close_(id_);
    id_ = H5I_INVALID_HID;
    return status;
  }

 private:
  hid_t id_ = H5I_INVALID_HID;
  Closer close_ = nullptr;
};

}  // namespace tessera::io
