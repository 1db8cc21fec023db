// The rank-to-GPU rule (mpi/device_binding.hpp), without MPI or a GPU.
#include <gtest/gtest.h>

#include "mpi/device_binding.hpp"

namespace {

using tessera::mpi::choose_device;

TEST(DeviceBinding, LocalRankModuloVisibleDevices) {
  EXPECT_EQ(choose_device(0, 4).device, 0);
  EXPECT_EQ(choose_device(3, 4).device, 3);
  EXPECT_EQ(choose_device(5, 4).device, 1);  // more ranks than GPUs on a node: shared
  EXPECT_EQ(choose_device(6, 3).device, 0);
  EXPECT_EQ(choose_device(2, 1).device, 0);
  EXPECT_TRUE(choose_device(5, 4).why_not.empty());
}

TEST(DeviceBinding, OverrideWins) {
  EXPECT_EQ(choose_device(0, 4, 2).device, 2);
  EXPECT_EQ(choose_device(3, 4, 0).device, 0);
}

TEST(DeviceBinding, NoDeviceOrOverrideOutOfRange) {
  const auto none = choose_device(0, 0);
  EXPECT_EQ(none.device, -1);
  EXPECT_EQ(none.why_not, "no CUDA device visible");
  const auto bad = choose_device(0, 2, 2);
  EXPECT_EQ(bad.device, -1);
  EXPECT_EQ(bad.why_not, "--device 2: only 2 CUDA device(s) visible");
}

}  // namespace
