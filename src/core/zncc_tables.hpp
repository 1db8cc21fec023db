// An image's five prefix tables for core::zncc_placement (ZnccImageTables:
// sums and sums of squares in double, flatness counts in int32; each
// (H+1) x (W+1), row 0 and column 0 zero), built in two passes that a GPU runs
// with one thread per row, then one thread per column:
//   row pass:    P[y+1][x+1] = (running sum of row y up to x)
//   column pass: P[y+1][c]   = P[y][c] + P[y+1][c], top to bottom.
// These are the additions of the CPU's prefix_table (src/xcorr/xcorr.cpp:
// row += v; P[y+1][x+1] = P[y][x+1] + row) in the same order, so the tables
// have the same bits (tests/xcorr/test_zncc_peak.cpp checks it); the counts
// are exact integers in any order.
#pragma once

#include <stdint.h>

#include "hd.hpp"

namespace tessera::core {

struct ZnccTablesOut {
  double* s1;
  double* s2;
  int32_t* nonzero;
  int32_t* diff_h;
  int32_t* diff_v;
};

// Row pass of row y (0 <= y < H) of pixels pix [H][W]; also zeroes column 0
// of table row y+1 (the caller zeroes table row 0).
TESSERA_HD inline void zncc_tables_row(const float* pix, int W, int y, ZnccTablesOut t) {
  const long long w1 = (long long)W + 1, o = (long long)(y + 1) * w1;
  const float* p = pix + (long long)y * W;
  const float* up = y > 0 ? p - W : p;
  double r1 = 0, r2 = 0;
  int32_t nz = 0, dh = 0, dv = 0;
  t.s1[o] = 0;
  t.s2[o] = 0;
  t.nonzero[o] = t.diff_h[o] = t.diff_v[o] = 0;
  for (int x = 0; x < W; ++x) {
    const float f = p[x];
    const double v = f;
    r1 += v;
    r2 += v * v;
    nz += int32_t(f != 0.0f);
    dh += int32_t(x > 0 && f != p[x - 1]);
    dv += int32_t(y > 0 && f != up[x]);
    t.s1[o + x + 1] = r1;
    t.s2[o + x + 1] = r2;
    t.nonzero[o + x + 1] = nz;
    t.diff_h[o + x + 1] = dh;
    t.diff_v[o + x + 1] = dv;
  }
}

// Column pass of column c (0 <= c <= W), after every row pass.
TESSERA_HD inline void zncc_tables_col(int H, int W, int c, ZnccTablesOut t) {
  const long long w1 = (long long)W + 1;
  for (int y = 0; y < H; ++y) {
    const long long a = (long long)y * w1 + c, b = a + w1;
    t.s1[b] = t.s1[a] + t.s1[b];
    t.s2[b] = t.s2[a] + t.s2[b];
    t.nonzero[b] = t.nonzero[a] + t.nonzero[b];
    t.diff_h[b] = t.diff_h[a] + t.diff_h[b];
    t.diff_v[b] = t.diff_v[a] + t.diff_v[b];
  }
}

}  // namespace tessera::core
