#include "session.hpp"

#include <cstdlib>
#include <filesystem>
#include <system_error>

namespace tessera::mpi {

namespace {

// Whether a launcher started this process: mpirun/mpiexec (Open MPI's or
// Hydra's) or srun with PMIx or PMI-2. Each of them sets one of these.
bool started_by_a_launcher() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE", "PMI_FD"})
    if (std::getenv(v) != nullptr) return true;
  return false;
}

// A process started without a launcher is an MPI singleton: one rank, no
// other process to talk to. Open MPI 4 then starts a supporting daemon
// (orted) and opens every transport, including the Omni-Path one whose library
// pins the process to each core in turn and sleeps (0.41 s of start-up here,
// about as long as fitting 200k two-dip pixels). For a singleton, which never
// spawns and has no peer, tell it to do neither: no daemon, the ob1 messaging
// layer with the self and shared-memory transports only (0.06 s). Only where
// the user has not set these (setenv without overwrite); Open MPI's own
// variables, so other MPI libraries ignore them.
//
// Every isolated singleton has the same job id, so their session directories
// (where OMPIO keeps a file's shared-file-pointer segment, opened with every
// HDF5 file) would be one: a run that finishes removes it while another is
// opening a file there, and that open fails ("mca_sharedfp_sm_file_open:
// unable to open file for mmap"; seen with four `tessera fit` at once, about
// one in 80). Each singleton gets a directory of its own instead, made here
// under $TMPDIR (or /tmp) and removed after MPI_Finalize (Open MPI empties it).
// Returns that directory, or "" where none was made.
std::string singleton_defaults() {
  if (started_by_a_launcher()) return {};
  setenv("OMPI_MCA_ess_singleton_isolated", "1", 0);
  setenv("OMPI_MCA_pml", "ob1", 0);
  setenv("OMPI_MCA_btl", "self,vader", 0);
  if (std::getenv("OMPI_MCA_orte_tmpdir_base") != nullptr) return {};
  const char* tmp = std::getenv("TMPDIR");
  std::string dir = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/tessera-mpi-XXXXXX";
  if (mkdtemp(dir.data()) == nullptr) return {};  // Open MPI's default then
  setenv("OMPI_MCA_orte_tmpdir_base", dir.c_str(), 1);
  return dir;
}

}  // namespace

Session::Session(int& argc, char**& argv) {
  session_base_ = singleton_defaults();
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
}

Session::~Session() {
  MPI_Finalize();
  if (!session_base_.empty()) {
    std::error_code ignored;  // a leftover directory in the temporary area is harmless
    std::filesystem::remove_all(session_base_, ignored);
  }
}

NodePlace node_place(MPI_Comm comm) {
  NodePlace p;
  char host[MPI_MAX_PROCESSOR_NAME] = {};
  int host_len = 0;
  MPI_Get_processor_name(host, &host_len);
  p.host.assign(host, host + host_len);
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm node;
  MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
  MPI_Comm_rank(node, &p.local_rank);
  MPI_Comm_size(node, &p.local_size);
  MPI_Comm_free(&node);
  return p;
}

std::string library_version() {
  char buf[MPI_MAX_LIBRARY_VERSION_STRING] = {};
  int len = 0;
  MPI_Get_library_version(buf, &len);
  std::string s(buf, buf + len);
  s = s.substr(0, s.find_first_of("\r\n"));  // the first line names library and version
  while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.pop_back();
  int major = 0, minor = 0;
  MPI_Get_version(&major, &minor);
  return s + " (MPI " + std::to_string(major) + "." + std::to_string(minor) + ")";
}

}  // namespace tessera::mpi
