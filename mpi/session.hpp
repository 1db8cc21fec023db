// MPI for the lifetime of a process, and what the process can learn of its
// place: its rank, the node it runs on and its rank there, the MPI library.
#pragma once

#include <mpi.h>

#include <string>

namespace tessera::mpi {

// MPI_Init_thread with MPI_THREAD_FUNNELED (worker threads never call MPI;
// only each rank's main thread does) and MPI_Finalize at the end of the scope.
class Session {
 public:
  Session(int& argc, char**& argv);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  int rank() const { return rank_; }
  int size() const { return size_; }

 private:
  int rank_ = 0, size_ = 1;
  std::string session_base_;  // a singleton's own session directory, removed at the end
};

// This rank's place on its node (the ranks that share memory with it,
// MPI_Comm_split_type SHARED): the rule that binds GPUs counts on it.
// Collective over comm.
struct NodePlace {
  std::string host;  // MPI_Get_processor_name
  int local_rank = 0, local_size = 1;
};
NodePlace node_place(MPI_Comm comm);

// "Open MPI v4.1.4, ... (MPI 3.1)": the library's first line and the standard's version.
std::string library_version();

}  // namespace tessera::mpi
