// GoogleTest main for multi-rank tests (run under mpiexec; one rank works too).
//
// Initialises MPI around RUN_ALL_TESTS. Rank 0 prints GoogleTest's usual
// report; the other ranks print only their failures, each line prefixed with
// "[rank N]", so that a failure seen on one rank alone is not lost. The exit
// status is non-zero on every rank when any rank failed.
//
// Tests must keep every rank in step: check with EXPECT_* (not ASSERT_*, which
// returns early) between collective calls, or agree before returning.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdio>
#include <string>

namespace {

class RankFailurePrinter : public testing::EmptyTestEventListener {
 public:
  explicit RankFailurePrinter(int rank) : rank_(rank) {}

  // (UnitTest::current_test_info() would deadlock inside OnTestPartResult:
  // GoogleTest holds its lock there, so the name is kept from OnTestStart.)
  void OnTestStart(const testing::TestInfo& test) override {
    test_ = std::string(test.test_suite_name()) + "." + test.name();
  }

  void OnTestPartResult(const testing::TestPartResult& result) override {
    if (!result.failed()) return;
    std::fprintf(stderr, "[rank %d] %s: %s:%d: failure\n%s\n", rank_, test_.c_str(),
                 result.file_name() ? result.file_name() : "?", result.line_number(),
                 result.message());
    std::fflush(stderr);
  }

 private:
  int rank_;
  std::string test_;
};

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  testing::InitGoogleTest(&argc, argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank != 0) {
    auto& listeners = testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new RankFailurePrinter(rank));
  }
  const int local = RUN_ALL_TESTS();
  int any = 0;
  MPI_Allreduce(&local, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (rank == 0 && any != 0 && local == 0)
    std::fprintf(stderr, "tests failed on another rank (see the [rank N] lines)\n");
  MPI_Finalize();
  return any != 0 ? 1 : 0;
}
