// Parallel HDF5 input and output (src/io) with any number of ranks: ctest runs
// this binary with 1, 2, 3 and 7 ranks. Slabs of uint16, int32, float32 and
// float64 cubes read as float; collective output byte-identical to a one-rank
// write; ranks with no rows; all-or-nothing output files; one-line errors
// agreed on every rank.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <span>
#include <string>
#include <vector>

#include "h5_test_util.hpp"
#include "io/error.hpp"
#include "mpi/collectives.hpp"
#include "io/h5_input.hpp"
#include "io/h5_output.hpp"
#include "io/layout.hpp"
#include "mpi/decomposition.hpp"

using namespace tessera;
using namespace tessera::test;

namespace {

const auto* const scratch_env = testing::AddGlobalTestEnvironment(new ScratchDir);

constexpr hsize_t kSweep = 5, kNy = 11, kNx = 6;

// Cube values: exact in uint16, int32 (signed) and float.
double cube_value(hsize_t i, hsize_t y, hsize_t x) {
  return static_cast<double>((i * 7 + y * 131 + x * 3) % 6000);
}

std::vector<double> cube(hsize_t ns, hsize_t ny, hsize_t nx, double scale, double shift) {
  std::vector<double> v;
  for (hsize_t i = 0; i < ns; ++i)
    for (hsize_t y = 0; y < ny; ++y)
      for (hsize_t x = 0; x < nx; ++x) v.push_back(cube_value(i, y, x) * scale + shift);
  return v;
}

// Rank 0 writes one file with the cube in several types, and a sweep.
std::string write_typed_cube(const std::string& name, hsize_t ny) {
  const std::string file = scratch(name);
  const std::vector<hsize_t> dims{kSweep, ny, kNx};
  const auto u16 = cube(kSweep, ny, kNx, 1.0, 0.0);
  const auto i32 = cube(kSweep, ny, kNx, 1.0, -3000.0);
  const auto f64 = cube(kSweep, ny, kNx, 0.1, 1e-3);  // rounded to float when read
  serial_write(file, "/u16", H5T_STD_U16LE, H5T_NATIVE_DOUBLE, dims, u16.data());
  serial_write(file, "/i32", H5T_STD_I32BE, H5T_NATIVE_DOUBLE, dims, i32.data());
  serial_write(file, "/f64", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, dims, f64.data());
  serial_write(file, "/group/f32", H5T_IEEE_F32LE, H5T_NATIVE_DOUBLE, dims, u16.data());
  const std::vector<double> sweep{2800.0, 2812.5, 2825.0, 2837.5, 2850.0};
  serial_write(file, "/sweep", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, {kSweep}, sweep.data());
  return file;
}

}  // namespace

TEST(Agreement, AllOkAndFirstFailingRank) {
  const int rank = world_rank(), size = world_size();
  EXPECT_TRUE(mpi::all_ok(MPI_COMM_WORLD, true));
  EXPECT_FALSE(mpi::all_ok(MPI_COMM_WORLD, rank != size - 1));
  EXPECT_EQ(mpi::agree_error(MPI_COMM_WORLD, ""), "");
  // Ranks >= size / 2 fail; the lowest failing rank's message wins everywhere.
  const std::string mine = rank >= size / 2 ? "failed on rank " + std::to_string(rank) : "";
  EXPECT_EQ(mpi::agree_error(MPI_COMM_WORLD, mine), "failed on rank " + std::to_string(size / 2));
  const std::string msg = error_of([&] {
    (void)io::run_agreed(MPI_COMM_WORLD, [&] {
      if (rank == size - 1) throw std::runtime_error("bad thing on the last rank");
      return 42;
    });
  });
  EXPECT_EQ(msg, "bad thing on the last rank");
  EXPECT_EQ(io::run_agreed(MPI_COMM_WORLD, [] { return 7; }), 7);
}

TEST(Layout, PixelMajorRoundTrip) {
  const std::size_t ns = 37, np = 45;  // beyond one tile, awkward sizes
  std::vector<float> slab(ns * np), y(ns * np), back(ns * np);
  for (std::size_t k = 0; k < slab.size(); ++k) slab[k] = static_cast<float>(k);
  io::to_pixel_major(slab, ns, np, y);
  for (std::size_t p = 0; p < np; ++p)
    for (std::size_t i = 0; i < ns; ++i) ASSERT_EQ(y[p * ns + i], slab[i * np + p]);
  io::to_sweep_major(y, ns, np, back);
  EXPECT_EQ(back, slab);
  EXPECT_THROW(io::to_pixel_major(slab, ns, np + 1, y), std::invalid_argument);
  EXPECT_THROW(io::to_pixel_major(slab, ns, np, std::span<float>(slab)), std::invalid_argument);
}

TEST(ReadSlab, EveryTypeAsFloatWithAnyRanks) {
  const std::string file = write_typed_cube("typed.h5", kNy);
  const int rank = world_rank(), size = world_size();
  io::InputFile in(MPI_COMM_WORLD, file);
  EXPECT_EQ(in.read_vector("/sweep"), (std::vector<double>{2800.0, 2812.5, 2825.0, 2837.5, 2850.0}));

  const mpi::Range rows = mpi::split_rows(kNy, size, rank);
  const io::Block block{rows.begin, rows.end, 1, 5};  // columns 1:5, a region of interest
  struct Case { const char* name; double scale, shift; const char* type; io::NumericClass cls; };
  for (const Case& c : {Case{"u16", 1.0, 0.0, "uint16", io::NumericClass::Integer},
                        Case{"i32", 1.0, -3000.0, "int32", io::NumericClass::Integer},
                        Case{"f64", 0.1, 1e-3, "float64", io::NumericClass::Float},
                        Case{"group/f32", 1.0, 0.0, "float32", io::NumericClass::Float}}) {
    SCOPED_TRACE(c.name);
    const io::DatasetInfo info = in.require(c.name, 3);
    EXPECT_EQ(info.dims, (std::vector<std::uint64_t>{kSweep, kNy, kNx}));
    EXPECT_EQ(info.type, c.type);
    EXPECT_EQ(info.numeric, c.cls);
    std::vector<float> slab(kSweep * block.pixels(), -1.0f);
    EXPECT_EQ(in.read_slab(c.name, block, slab), kSweep);
    std::vector<float> y(slab.size());
    io::to_pixel_major(slab, kSweep, block.pixels(), y);
    for (std::int64_t r = 0; r < block.rows(); ++r)
      for (std::int64_t x = 0; x < block.cols(); ++x)
        for (hsize_t i = 0; i < kSweep; ++i) {
          const auto expected = static_cast<float>(
              cube_value(i, block.y0 + r, block.x0 + x) * c.scale + c.shift);
          const std::int64_t pix = r * block.cols() + x;
          ASSERT_EQ(y[pix * kSweep + i], expected) << "sweep " << i << " pixel " << pix;
        }
  }
}

TEST(ReadSlab, RanksWithoutRowsTakePart) {
  // 3 rows: with 7 ranks, ranks 3..6 read nothing but join the collective read.
  const std::string file = write_typed_cube("three_rows.h5", 3);
  const int rank = world_rank(), size = world_size();
  io::InputFile in(MPI_COMM_WORLD, file);
  for (int round = 0; round < 2; ++round) {
    // Round 1: only the last rank reads, everything.
    const mpi::Range rows = round == 0 ? mpi::split_rows(3, size, rank)
                                       : (rank == size - 1 ? mpi::Range{0, 3} : mpi::Range{3, 3});
    const io::Block block{rows.begin, rows.end, 0, static_cast<std::int64_t>(kNx)};
    std::vector<float> slab(kSweep * block.pixels());
    in.read_slab("/u16", block, slab);
    for (std::size_t k = 0; k < slab.size(); ++k) {
      const std::size_t i = k / block.pixels(), p = k % block.pixels();
      ASSERT_EQ(slab[k], cube_value(i, block.y0 + p / kNx, p % kNx));
    }
  }
}

TEST(ReadBlock, TwoDimensionalMap) {
  const std::string file = scratch("map.h5");
  std::vector<float> map(kNy * kNx);
  for (std::size_t k = 0; k < map.size(); ++k) map[k] = 0.5f * static_cast<float>(k);
  serial_write(file, "/params/offset", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {kNy, kNx}, map.data());
  const mpi::Range rows = mpi::split_rows(kNy, world_size(), world_rank());
  io::InputFile in(MPI_COMM_WORLD, file);
  const io::Block block{rows.begin, rows.end, 2, 4};
  std::vector<float> out(block.pixels());
  in.read_block("/params/offset", block, out);
  for (std::int64_t r = 0; r < block.rows(); ++r)
    for (std::int64_t x = 0; x < 2; ++x) EXPECT_EQ(out[r * 2 + x], map[(block.y0 + r) * kNx + 2 + x]);
}

namespace {

// The same output written by `comm`: maps split by rows, a table with fewer
// rows than 7 ranks, a sweep from rank 0, a cube by pixel rows, attributes.
void write_output(MPI_Comm comm, const std::string& path) {
  int rank = 0, size = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  io::OutputFile out(comm, path, false);
  out.create_dataset("/params/offset", io::DType::Float32, {kNy, kNx});
  out.create_dataset("/params/pos1", io::DType::Float32, {kNy, kNx});
  out.create_dataset("/state", io::DType::Int32, {kNy, kNx});
  out.create_dataset("/coords", io::DType::Float64, {3, 2});
  out.create_dataset("/sweep", io::DType::Float64, {kSweep});
  out.create_dataset("/cube", io::DType::UInt16, {kSweep, kNy, kNx});
  out.create_group("/derived");
  out.write_attribute("/", "model", "lorentzian");
  out.write_attribute("/", "parameters", std::vector<std::string>{"offset", "pos1", "fwhm1", "amp1"});
  out.write_attribute("/", "version", std::int64_t{3});
  out.write_attribute("/params/pos1", "units", "MHz");
  out.write_attribute("/params/pos1", "scale", 2.5);
  out.write_attribute("/", "sweep", std::vector<double>{1.0, 2.0, 3.5});

  const mpi::Range rows = mpi::split_rows(kNy, size, rank);
  std::vector<float> offset, pos;
  std::vector<std::int32_t> state;
  for (std::int64_t y = rows.begin; y < rows.end; ++y)
    for (hsize_t x = 0; x < kNx; ++x) {
      offset.push_back(std::sqrt(static_cast<float>(y * kNx + x)));
      pos.push_back(y == 2 && x == 3 ? NAN : 2870.0f + 0.1f * static_cast<float>(y) - 0.01f * x);
      state.push_back(static_cast<std::int32_t>((y + x) % 4));
    }
  out.write_rows<float>("/params/offset", rows.begin, rows.end, offset);
  out.write_rows<float>("/params/pos1", rows.begin, rows.end, pos);
  out.write_rows<std::int32_t>("/state", rows.begin, rows.end, state);
  const mpi::Range trows = mpi::split_rows(3, size, rank);  // idle ranks with 7
  std::vector<double> coords;
  for (std::int64_t r = trows.begin; r < trows.end; ++r) coords.insert(coords.end(), {r * 1.5, -r * 0.25});
  out.write_rows<double>("/coords", trows.begin, trows.end, coords);
  const std::vector<float> sweep{1.0f, 2.0f, 3.0f, 4.0f, 5.5f};  // converted to float64
  out.write_all<float>("/sweep", rank == 0 ? std::span<const float>(sweep) : std::span<const float>());
  std::vector<std::uint16_t> cube_rows;
  for (hsize_t i = 0; i < kSweep; ++i)
    for (std::int64_t y = rows.begin; y < rows.end; ++y)
      for (hsize_t x = 0; x < kNx; ++x) cube_rows.push_back(static_cast<std::uint16_t>(cube_value(i, y, x)));
  out.write_slab<std::uint16_t>("/cube", rows.begin, rows.end, cube_rows);
  EXPECT_TRUE(exists(path + ".partial"));
  EXPECT_FALSE(exists(path));
  out.commit();
}

}  // namespace

TEST(Output, CollectiveWriteIsByteIdenticalToOneRank) {
  const std::string many = scratch("out_many.h5"), one = scratch("out_one.h5");
  write_output(MPI_COMM_WORLD, many);
  if (world_rank() == 0) write_output(MPI_COMM_SELF, one);
  MPI_Barrier(MPI_COMM_WORLD);
  EXPECT_TRUE(exists(many));
  EXPECT_FALSE(exists(many + ".partial"));
  if (world_rank() == 0) {
    const auto a = file_bytes(many), b = file_bytes(one);
    EXPECT_GT(a.size(), 0u);
    EXPECT_TRUE(a == b) << "files differ: " << a.size() << " and " << b.size() << " bytes";
  }
  // Read back what was written, with every rank.
  io::InputFile in(MPI_COMM_WORLD, many);
  EXPECT_EQ(in.read_vector("/sweep"), (std::vector<double>{1.0, 2.0, 3.0, 4.0, 5.5}));
  const mpi::Range rows = mpi::split_rows(kNy, world_size(), world_rank());
  const io::Block block{rows.begin, rows.end, 0, static_cast<std::int64_t>(kNx)};
  std::vector<float> pos(block.pixels()), state(block.pixels()), cube_rows(kSweep * block.pixels());
  in.read_block("/params/pos1", block, pos);
  in.read_block("/state", block, state);
  in.read_slab("/cube", block, cube_rows);
  for (std::int64_t k = 0; k < block.pixels(); ++k) {
    const std::int64_t y = block.y0 + k / kNx, x = k % kNx;
    if (y == 2 && x == 3) EXPECT_TRUE(std::isnan(pos[k]));
    else EXPECT_EQ(pos[k], 2870.0f + 0.1f * static_cast<float>(y) - 0.01f * x);
    EXPECT_EQ(state[k], static_cast<float>((y + x) % 4));
  }
  for (std::size_t k = 0; k < cube_rows.size(); ++k) {
    const std::size_t i = k / block.pixels(), p = k % block.pixels();
    EXPECT_EQ(cube_rows[k], cube_value(i, block.y0 + p / kNx, p % kNx));
  }
  EXPECT_EQ(in.read_attribute_string("/", "model"), "lorentzian");
  EXPECT_EQ(in.read_attribute_string("params/pos1", "units"), "MHz");
  EXPECT_EQ(in.read_attribute_doubles("/params/pos1", "scale"), std::vector<double>{2.5});
  EXPECT_EQ(in.read_attribute_doubles("/", "sweep"), (std::vector<double>{1.0, 2.0, 3.5}));
  EXPECT_EQ(in.read_attribute_doubles("/", "version"), std::vector<double>{3.0});
  EXPECT_TRUE(in.has_attribute("/", "parameters"));
  EXPECT_FALSE(in.has_attribute("/", "nothing"));
  EXPECT_EQ(error_of([&] { (void)in.read_attribute_string("/", "nothing"); }),
            many + ": / attribute 'nothing': no such attribute");
  EXPECT_EQ(error_of([&] { (void)in.read_attribute_string("/", "sweep"); }),
            many + ": / attribute 'sweep': is not a string");
}

TEST(Output, CommitRenamesAndAbandonRemoves) {
  const std::string path = scratch("lifecycle.h5");
  {
    io::OutputFile out(MPI_COMM_WORLD, path, false);
    out.create_dataset("/x", io::DType::Float32, {4});
    EXPECT_TRUE(exists(path + ".partial"));
    // destroyed without commit()
  }
  MPI_Barrier(MPI_COMM_WORLD);
  EXPECT_FALSE(exists(path + ".partial"));
  EXPECT_FALSE(exists(path));

  // A stale partial file (not even HDF5) is replaced. (The barrier keeps the
  // checks above from seeing it.)
  MPI_Barrier(MPI_COMM_WORLD);
  if (world_rank() == 0) std::ofstream(path + ".partial") << "left over by a killed job";
  MPI_Barrier(MPI_COMM_WORLD);
  {
    io::OutputFile out(MPI_COMM_WORLD, path, false);
    out.create_dataset("/x", io::DType::Int64, {2});
    out.write_all<std::int64_t>("/x", std::vector<std::int64_t>{7, 8});
    out.commit();
    EXPECT_TRUE(out.committed());
  }
  MPI_Barrier(MPI_COMM_WORLD);
  EXPECT_TRUE(exists(path));
  EXPECT_FALSE(exists(path + ".partial"));

  // An existing output is refused without force, and nothing is created.
  EXPECT_EQ(error_of([&] { io::OutputFile out(MPI_COMM_WORLD, path, false); }),
            path + ": exists already (--force overwrites it)");
  EXPECT_FALSE(exists(path + ".partial"));
  // With force it is replaced, at commit only.
  {
    io::OutputFile out(MPI_COMM_WORLD, path, true);
    out.create_dataset("/y", io::DType::Float64, {1});
    out.write_all<double>("/y", std::vector<double>{1.25});
    out.commit();
  }
  io::InputFile in(MPI_COMM_WORLD, path);
  EXPECT_FALSE(in.has("/x"));
  EXPECT_EQ(in.read_vector("/y"), std::vector<double>{1.25});
}

TEST(Output, AnErrorOnOneRankIsSeenByAllAndLeavesNoFile) {
  const std::string path = scratch("one_rank_fails.h5");
  const int rank = world_rank(), size = world_size();
  const std::string msg = error_of([&] {
    io::OutputFile out(MPI_COMM_WORLD, path, false);
    out.create_dataset("/params/a", io::DType::Float32, {kNy, kNx});
    const mpi::Range rows = mpi::split_rows(kNy, size, rank);
    // The last rank passes one value too few.
    std::vector<float> v(rows.size() * kNx - (rank == size - 1 ? 1 : 0), 1.0f);
    out.write_rows<float>("/params/a", rows.begin, rows.end, v);
    out.commit();
  });
  const mpi::Range last = mpi::split_rows(kNy, size, size - 1);
  EXPECT_EQ(msg, path + ": /params/a: " + std::to_string(last.size() * kNx - 1) +
                     " values given for rows " + std::to_string(last.begin) + ":" +
                     std::to_string(last.end) + " of [11, 6]");
  expect_same_on_all_ranks(msg);
  MPI_Barrier(MPI_COMM_WORLD);
  EXPECT_FALSE(exists(path));
  EXPECT_FALSE(exists(path + ".partial"));
}

TEST(Output, BadRequests) {
  const std::string dir = scratch("no_such_dir");
  expect_same_on_all_ranks(error_of([&] { io::OutputFile out(MPI_COMM_WORLD, dir + "/x.h5", false); }));
  EXPECT_EQ(error_of([&] { io::OutputFile out(MPI_COMM_WORLD, dir + "/x.h5", false); }),
            dir + "/x.h5: directory '" + dir + "' does not exist");
  EXPECT_EQ(error_of([&] { io::OutputFile out(MPI_COMM_WORLD, ScratchDir::path(), true); }),
            ScratchDir::path() + ": is a directory");
  const std::string path = scratch("bad_requests.h5");
  io::OutputFile out(MPI_COMM_WORLD, path, false);
  out.create_dataset("/a", io::DType::Float32, {2, 3});
  EXPECT_EQ(error_of([&] { out.create_dataset("/a", io::DType::Float32, {2}); }),
            path + ": /a: exists already");
  EXPECT_EQ(error_of([&] { out.create_dataset("/a/b", io::DType::Float32, {2}); }),
            path + ": /a: exists and is not a group");
  EXPECT_EQ(error_of([&] { out.write_rows<float>("/nope", 0, 0, {}); }), path + ": /nope: no such dataset");
  EXPECT_EQ(error_of([&] { out.write_rows<float>("/a", 1, 3, std::vector<float>(6)); }),
            path + ": /a: rows 1:3 outside the dataset [2, 3]");
  EXPECT_EQ(error_of([&] { out.write_all<float>("/a", std::vector<float>(5)); }),
            path + ": /a: 5 values given for the whole dataset [2, 3]");
  EXPECT_EQ(error_of([&] { out.write_attribute("/missing", "x", 1.0); }),
            path + ": /missing: no such object");
}

TEST(BadInput, OneLineMessagesOnEveryRank) {
  const std::string text = scratch("not_hdf5.h5"), file = scratch("bad.h5");
  if (world_rank() == 0) std::ofstream(text) << "this is not an HDF5 file\n";
  const float zero[16] = {};
  serial_write(file, "/flat", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {4, 4}, zero);
  serial_write(file, "/empty", H5T_STD_U16LE, H5T_NATIVE_FLOAT, {0, 4, 4}, nullptr);
  serial_write(file, "/group/cube", H5T_STD_U16LE, H5T_NATIVE_FLOAT, {1, 4, 4}, zero);
  serial_write(file, "/sweep2d", H5T_IEEE_F64LE, H5T_NATIVE_FLOAT, {4, 4}, zero);
  {  // a string dataset and a compound dataset
    hid_t str = H5Tcopy(H5T_C_S1);
    H5Tset_size(str, 8);
    serial_write(file, "/names", str, str, {2}, "abcdefghijklmnop");
    H5Tclose(str);
    hid_t cmp = H5Tcreate(H5T_COMPOUND, 8);
    H5Tinsert(cmp, "a", 0, H5T_NATIVE_FLOAT);
    H5Tinsert(cmp, "b", 4, H5T_NATIVE_FLOAT);
    serial_write(file, "/pairs", cmp, cmp, {2}, zero);
    H5Tclose(cmp);
  }
  const std::string missing = scratch("missing.h5");
  auto check = [&](const std::string& got, const std::string& expected) {
    EXPECT_EQ(got, expected);
    EXPECT_EQ(got.find('\n'), std::string::npos);
    expect_same_on_all_ranks(got);
  };
  check(error_of([&] { io::InputFile in(MPI_COMM_WORLD, missing); }), missing + ": no such file");
  check(error_of([&] { io::InputFile in(MPI_COMM_WORLD, ScratchDir::path()); }),
        ScratchDir::path() + ": is a directory, not a file");
  check(error_of([&] { io::InputFile in(MPI_COMM_WORLD, text); }), text + ": not an HDF5 file");

  io::InputFile in(MPI_COMM_WORLD, file);
  std::vector<float> buf(64);
  const io::Block all{0, 4, 0, 4};
  check(error_of([&] { in.read_slab("/data", all, buf); }), file + ": /data: no such dataset");
  check(error_of([&] { in.read_slab("/a/b/c", all, buf); }), file + ": /a/b/c: no such dataset");
  check(error_of([&] { in.read_slab("/group", all, buf); }), file + ": /group: is a group, not a dataset");
  check(error_of([&] { in.read_slab("/flat", all, buf); }),
        file + ": /flat: has 2 dimensions [4, 4], expected 3 [n_sweep, ny, nx]");
  check(error_of([&] { in.read_slab("/names", all, buf); }),
        file + ": /names: type string is not numeric (expected integers or floats)");
  check(error_of([&] { in.read_slab("/pairs", all, buf); }),
        file + ": /pairs: type compound is not numeric (expected integers or floats)");
  check(error_of([&] { in.read_slab("/empty", all, buf); }), file + ": /empty: is empty (dimensions [0, 4, 4])");
  check(error_of([&] { (void)in.read_vector("/sweep2d"); }), file + ": /sweep2d: has 2 dimensions [4, 4], expected 1");
  check(error_of([&] { (void)in.read_vector("/nope"); }), file + ": /nope: no such dataset");
  // A rank's own bad block or buffer: agreed before the read, so every rank throws.
  const int last = world_size() - 1;
  const io::Block bad = world_rank() == last ? io::Block{2, 5, 0, 4} : io::Block{0, 0, 0, 4};
  std::vector<float> sized(static_cast<std::size_t>(bad.pixels()));
  check(error_of([&] { in.read_slab("/group/cube", bad, sized); }),
        file + ": /group/cube: block rows 2:5, columns 0:4 outside the dataset [1, 4, 4]");
  std::vector<float> small(world_rank() == last ? 15 : 16);
  check(error_of([&] { in.read_slab("/group/cube", all, small); }),
        file + ": /group/cube: buffer holds 15 values, the block needs 16");
  // The file is still usable after the agreed errors.
  std::vector<float> ok(16, 1.0f);
  in.read_slab("/group/cube", all, ok);
  EXPECT_EQ(ok, std::vector<float>(16, 0.0f));
  EXPECT_TRUE(in.has("/group/cube"));
  EXPECT_FALSE(in.has("/group"));
  EXPECT_EQ(in.describe("/names").type, "string");
}
