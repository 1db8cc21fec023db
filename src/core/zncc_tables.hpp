// The prefix tables of core::zncc_placement, written once for both backends:
// an image's five (ZnccImageTables: sums and sums of squares in double,
// flatness counts in int32) and a template's centred sums (ZnccTemplateStats::tc),
// each (rows+1) x (cols+1) with row 0 and column 0 zero. A table is built by
//   row pass:    P[y+1][x+1] = running sum of row y up to x (ZnccRowPass),
//   column step: P[y+1][c]   = P[y][c] + P[y+1][c], rows top to bottom (zncc_prefix_down).
// The column step of row y+1 needs only the finished row y, so a GPU runs the
// row passes with one thread per row and then the column steps with one thread
// per column (zncc_tables_row, zncc_tables_col), and the CPU sweeps down the
// rows doing both while a row is in cache (zncc_prefix_sweep): the same
// additions with the same operands, so the same bits (tests/xcorr/test_zncc_peak.cpp
// checks it); the counts are exact integers in any order.
#pragma once

#include <stdint.h>

#include "hd.hpp"

namespace tessera::core {

// Row pass of table row y+1 of P ((W+1) columns): add(x, v) for x = 0, 1, ...
// stores the running sum of the v up to x; column 0 is 0. The passes of
// several tables share one loop over the pixels, so that their chains of
// additions overlap.
template <class T> struct ZnccRowPass {
  T* row;
  T sum = 0;
  TESSERA_HD ZnccRowPass(T* P, int W, int y) : row(P + (long long)(y + 1) * ((long long)W + 1)) {
    row[0] = 0;
  }
  TESSERA_HD void add(int x, T v) {
    sum += v;
    row[x + 1] = sum;
  }
};

// Column step of table row y+1 over columns [c0, c1]: adds row y, which must
// be final (its own step done, or row 0).
template <class T>
TESSERA_HD inline void zncc_prefix_down(T* P, int W, int y, int c0, int c1) {
  const long long w1 = (long long)W + 1;
  const T* above = P + (long long)y * w1;
  T* row = P + (long long)(y + 1) * w1;
  for (int c = c0; c <= c1; ++c) row[c] = above[c] + row[c];
}

// Row passes of row y of an image pix [H][W]: its sums and sums of squares.
TESSERA_HD inline void zncc_sums_row(const float* pix, int W, int y, double* s1, double* s2) {
  const float* p = pix + (long long)y * W;
  ZnccRowPass<double> sum(s1, W, y), squares(s2, W, y);
  for (int x = 0; x < W; ++x) {
    const double v = p[x];
    sum.add(x, v);
    squares.add(x, v * v);
  }
}

// Row passes of row y of an image pix [H][W]: its counts of pixels != 0, of
// pixels != their left neighbour and of pixels != their upper neighbour
// (zncc_window_flat reads them).
TESSERA_HD inline void zncc_counts_row(const float* pix, int W, int y, int32_t* nonzero,
                                       int32_t* diff_h, int32_t* diff_v) {
  const float* p = pix + (long long)y * W;
  const float* up = y > 0 ? p - W : p;
  ZnccRowPass<int32_t> nz(nonzero, W, y), dh(diff_h, W, y), dv(diff_v, W, y);
  for (int x = 0; x < W; ++x) {
    nz.add(x, int32_t(p[x] != 0.0f));
    dh.add(x, int32_t(x > 0 && p[x] != p[x - 1]));
    dv.add(x, int32_t(y > 0 && p[x] != up[x]));
  }
}

// Row pass of row y of a template pix [h][w]: the sums of pix - tbar (the
// padding correction of zncc_placement).
TESSERA_HD inline void zncc_centred_row(const float* pix, int w, int y, double tbar, double* tc) {
  const float* p = pix + (long long)y * w;
  ZnccRowPass<double> centred(tc, w, y);
  for (int x = 0; x < w; ++x) centred.add(x, double(p[x]) - tbar);
}

// Whole tables P... of H x W inputs in one sweep down the rows (the CPU's
// order): row 0 zeroed, then for each row y, rows(y) (its row passes) and the
// column step of every table.
template <class Rows, class... T>
TESSERA_HD inline void zncc_prefix_sweep(int H, int W, Rows rows, T*... P) {
  for (int c = 0; c <= W; ++c) ((P[c] = 0), ...);
  for (int y = 0; y < H; ++y) {
    rows(y);
    (zncc_prefix_down(P, W, y, 0, W), ...);
  }
}

struct ZnccTablesOut {
  double* s1;
  double* s2;
  int32_t* nonzero;
  int32_t* diff_h;
  int32_t* diff_v;
};

// All row passes of image row y (0 <= y < H) of pixels pix [H][W], for a
// thread per row; the caller zeroes table row 0.
TESSERA_HD inline void zncc_tables_row(const float* pix, int W, int y, ZnccTablesOut t) {
  zncc_sums_row(pix, W, y, t.s1, t.s2);
  zncc_counts_row(pix, W, y, t.nonzero, t.diff_h, t.diff_v);
}

// All column steps of column c (0 <= c <= W), after every row pass, for a
// thread per column.
TESSERA_HD inline void zncc_tables_col(int H, int W, int c, ZnccTablesOut t) {
  for (int y = 0; y < H; ++y) {
    zncc_prefix_down(t.s1, W, y, c, c);
    zncc_prefix_down(t.s2, W, y, c, c);
    zncc_prefix_down(t.nonzero, W, y, c, c);
    zncc_prefix_down(t.diff_h, W, y, c, c);
    zncc_prefix_down(t.diff_v, W, y, c, c);
  }
}

}  // namespace tessera::core
