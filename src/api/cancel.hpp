// What a library call throws when its caller's cancel flag is set: the call
// stops between blocks of work and returns nothing.
#pragma once

#include <atomic>
#include <stdexcept>

namespace tessera::api {

struct Cancelled : std::runtime_error {
  Cancelled() : std::runtime_error("cancelled") {}
};

inline void throw_if_cancelled(const std::atomic<bool>* flag) {
  if (flag != nullptr && flag->load(std::memory_order_relaxed)) throw Cancelled();
}

}  // namespace tessera::api
