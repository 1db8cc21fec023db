// The gather of an xcorr's per-pair results to rank 0, in the order of the
// pair list. The pairs are shared out by image (mpi/pairs.hpp), so a rank's
// pairs are scattered over the list; each result carries its pair's position,
// and rank 0 puts it back there. The result's fields are those of an xcorr
// peak as plain numbers, so that mpi/ needs nothing of src/xcorr.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <span>
#include <vector>

namespace tessera::mpi {

// One of a pair's --top candidates.
struct TopRecord {
  std::int64_t y = -1, x = -1;
  float value = 0;
};

// One pair's result.
struct PairRecord {
  std::int64_t index = 0;  // position of the pair in the list, 0 .. n_pairs - 1
  std::int64_t y = -1, x = -1;
  float value = 0;
  double sub_y = 0, sub_x = 0;
  float sharpness = 0, peak_ratio = 0;
  std::vector<TopRecord> top;  // --top K: K candidates (the same K on every rank), else empty
};

// Collective over comm. Every rank passes the records of the pairs it computed
// (any order), each with top_k candidates; rank 0 gets back all n_pairs
// records with records[p].index == p, the other ranks an empty vector. Values
// travel exactly (as doubles). Throws std::logic_error on rank 0 when a pair
// was computed by no rank or by two: a decomposition that lost a pair, never
// bad input.
[[nodiscard]] std::vector<PairRecord> gather_pairs_in_order(MPI_Comm comm, std::int64_t n_pairs,
                                                            std::span<const PairRecord> mine, int top_k = 0);

}  // namespace tessera::mpi
