// The run-time model dispatch and the transpose kernel. The fit kernels
// themselves are instantiated per model family in fit_kernels_<family>.cu.
#include "fit_kernels.cuh"

namespace tessera::cuda {
namespace {

constexpr int transpose_tile = 32;
constexpr int transpose_rows = 8;

// out[c][r] = in[r][c] for an `in` of rows x cols, through a padded shared
// tile so that both the reads and the writes coalesce.
__global__ void transpose_kernel(const float* in, float* out, int rows, int cols) {
  __shared__ float tile[transpose_tile][transpose_tile + 1];  // +1: no bank conflicts
  // Rows (spectra, many) on grid x, which allows 2^31 - 1 blocks; columns
  // (sweep points, few) on grid y.
  const int r0 = int(blockIdx.x) * transpose_tile;
  const int c0 = int(blockIdx.y) * transpose_tile;
  for (int k = int(threadIdx.y); k < transpose_tile; k += transpose_rows) {
    const int r = r0 + k, c = c0 + int(threadIdx.x);
    if (r < rows && c < cols) tile[k][threadIdx.x] = in[std::size_t(r) * cols + c];
  }
  __syncthreads();
  for (int k = int(threadIdx.y); k < transpose_tile; k += transpose_rows) {
    const int c = c0 + k, r = r0 + int(threadIdx.x);
    if (r < rows && c < cols) out[std::size_t(c) * rows + r] = tile[threadIdx.x][k];
  }
}

}  // namespace

void transpose_to_sweep_major(const float* in, float* out, int n, int n_points,
                              cudaStream_t stream) {
  const dim3 block(transpose_tile, transpose_rows);
  const dim3 grid((n + transpose_tile - 1) / transpose_tile,
                  (n_points + transpose_tile - 1) / transpose_tile);
  transpose_kernel<<<grid, block, 0, stream>>>(in, out, n, n_points);
}

bool launch_fit(const FitModelDesc& desc, const FitConfigDesc& config, const SpectraChunk& chunk,
                cudaStream_t stream) {
  switch (desc.kind) {
    case FitModelKind::lorentzian:
      return launch_lorentzian(desc, config, chunk, stream);
    case FitModelKind::gaussian:
      return launch_gaussian(desc, config, chunk, stream);
    case FitModelKind::stretched_exp:
    case FitModelKind::damped_cosine:
      return launch_decays(desc, config, chunk, stream);
    case FitModelKind::user:
      return launch_user(desc, config, chunk, stream);
  }
  return false;
}

}  // namespace tessera::cuda
