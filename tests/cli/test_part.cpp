// Parts of an output (src/cli/part.hpp): --part parsing with and without the
// SLURM array environment, coverage checks for merge, fingerprints. No MPI.
#include "part.hpp"

#include <gtest/gtest.h>

#include <map>
#include <string>

#include "command.hpp"

namespace tessera::cli {
namespace {

EnvLookup env_of(std::map<std::string, std::string> vars) {
  auto owned = std::make_shared<std::map<std::string, std::string>>(std::move(vars));
  return [owned](const char* name) -> const char* {
    const auto it = owned->find(name);
    return it == owned->end() ? nullptr : it->second.c_str();
  };
}

EnvLookup array(const std::string& id, const std::string& count, const std::string& min, const std::string& max) {
  return env_of({{"SLURM_ARRAY_TASK_ID", id}, {"SLURM_ARRAY_TASK_COUNT", count},
                 {"SLURM_ARRAY_TASK_MIN", min}, {"SLURM_ARRAY_TASK_MAX", max}});
}

TEST(ParsePart, ExplicitIsOneBased) {
  EXPECT_EQ(parse_part("1/3", env_of({})), (Part{1, 3}));
  EXPECT_EQ(parse_part("3/3", env_of({})), (Part{3, 3}));
  EXPECT_EQ(parse_part("1/1", env_of({})), (Part{1, 1}));
  for (const char* bad : {"0/3", "4/3", "3", "/3", "1/", "1/0", "a/b", "1/3x", "-1/3", "1/-3", "1.5/3", " 1/3"})
    EXPECT_THROW((void)parse_part(bad, env_of({})), UsageError) << bad;
}

TEST(ParsePart, ZeroSaysPartsCountFromOne) {
  try {
    (void)parse_part("0/4", env_of({}));
    FAIL() << "no error";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("numbered from 1"), std::string::npos) << e.what();
  }
}

TEST(ParsePart, NoOptionIgnoresTheArrayEnvironment) {
  // A plain `tessera fit` inside an array job fits the whole image.
  EXPECT_EQ(parse_part("", array("2", "3", "1", "3")), (Part{1, 1}));
}

TEST(ParsePart, AutoTakesTheArrayTask) {
  EXPECT_EQ(parse_part("auto", array("2", "3", "1", "3")), (Part{2, 3}));
  EXPECT_EQ(parse_part("auto", array("1", "1", "1", "1")), (Part{1, 1}));
}

TEST(ParsePart, AutoRefusesArraysNotOneToN) {
  EXPECT_THROW((void)parse_part("auto", env_of({})), UsageError);                 // not an array task
  EXPECT_THROW((void)parse_part("auto", array("0", "4", "0", "3")), UsageError);  // --array=0-3
  EXPECT_THROW((void)parse_part("auto", array("3", "1", "3", "3")), UsageError);  // --array=3 (resubmitted)
  EXPECT_THROW((void)parse_part("auto", array("3", "3", "1", "5")), UsageError);  // --array=1-5:2
  EXPECT_THROW((void)parse_part("auto", array("x", "3", "1", "3")), UsageError);
}

TEST(PartRange, ContiguousBandsOfSplitRows) {
  EXPECT_EQ(part_range(14, {1, 3}), (mpi::Range{0, 5}));
  EXPECT_EQ(part_range(14, {2, 3}), (mpi::Range{5, 10}));
  EXPECT_EQ(part_range(14, {3, 3}), (mpi::Range{10, 14}));
  EXPECT_EQ(part_range(2, {3, 3}), (mpi::Range{2, 2}));  // more parts than rows: empty
}

TEST(Fingerprint, IsFnv1a64) {
  // Test vectors of the FNV specification (offset basis, and "a").
  EXPECT_EQ(fingerprint_of(""), "cbf29ce484222325");
  EXPECT_EQ(fingerprint_of("a"), "af63dc4c8601ec8c");
  EXPECT_NE(fingerprint_of("tol=1e-06\n"), fingerprint_of("tol=1e-05\n"));
}

TEST(Fingerprint, FirstDifferenceNamesTheLine) {
  EXPECT_EQ(first_difference("a=1\nb=2\n", "a=1\nb=3\n"), "b=2 vs b=3");
  EXPECT_EQ(first_difference("a=1\n", "a=1\n"), "");
  EXPECT_EQ(first_difference("a=1\nb=2\n", "a=1\n"), "b=2 vs (nothing)");
}

PartStamp stamp(int i, int n, std::int64_t total, const std::string& text = "model=x\n") {
  PartStamp s;
  s.part = {i, n};
  s.rows = part_range(total, s.part);
  s.total_rows = total;
  s.datasets = {"/chi2"};
  s.fingerprint_text = text;
  s.complete = true;
  return s;
}

using Parts = std::vector<std::pair<std::string, PartStamp>>;

TEST(Coverage, EveryPartOnceInAnyOrder) {
  EXPECT_EQ(check_coverage({{"c", stamp(3, 3, 14)}, {"a", stamp(1, 3, 14)}, {"b", stamp(2, 3, 14)}}), "");
  EXPECT_EQ(check_coverage({{"w", stamp(1, 1, 14)}}), "");
  // More parts than rows: the empty parts are still required.
  EXPECT_EQ(check_coverage({{"a", stamp(1, 3, 2)}, {"b", stamp(2, 3, 2)}, {"c", stamp(3, 3, 2)}}), "");
}

void expect_reason(const Parts& parts, const std::string& words) {
  const std::string why = check_coverage(parts);
  EXPECT_NE(why.find(words), std::string::npos) << "'" << why << "' lacks '" << words << "'";
  EXPECT_EQ(why.find('\n'), std::string::npos) << why;
}

TEST(Coverage, RefusesGapsOverlapsAndMismatches) {
  expect_reason({}, "no part");
  expect_reason({{"a", stamp(1, 3, 14)}, {"b", stamp(2, 3, 14)}}, "part 3/3 (rows 10:14) is missing");
  expect_reason({{"a", stamp(1, 3, 14)}, {"b", stamp(2, 3, 14)}, {"b2", stamp(2, 3, 14)}, {"c", stamp(3, 3, 14)}},
                "given twice");
  expect_reason({{"a", stamp(1, 2, 14)}, {"b", stamp(2, 3, 14)}}, "part 2/3 of 14 rows");
  expect_reason({{"a", stamp(1, 2, 14)}, {"b", stamp(2, 2, 15)}}, "of 15 rows");
  expect_reason({{"a", stamp(1, 2, 14)}, {"b", stamp(2, 2, 14, "model=y\n")}},
                "different inputs or options (model=y vs model=x)");
  PartStamp unfinished = stamp(2, 2, 14);
  unfinished.complete = false;
  expect_reason({{"a", stamp(1, 2, 14)}, {"b", unfinished}}, "b: not a complete output");
  PartStamp moved = stamp(2, 2, 14);
  moved.rows = {6, 14};
  expect_reason({{"a", stamp(1, 2, 14)}, {"b", moved}}, "rows 6:14 are not those of part 2/2");
  PartStamp other = stamp(2, 2, 14);
  other.datasets = {"/state"};
  expect_reason({{"a", stamp(1, 2, 14)}, {"b", other}}, "different datasets");
}

}  // namespace
}  // namespace tessera::cli
