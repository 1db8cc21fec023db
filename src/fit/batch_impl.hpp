// The CPU batch engine behind fit_batch (batch.hpp): threads take chunks of
// spectra; each thread keeps one fit in flight per SIMD lane (`lanes`), and
// refills a lane as soon as its fit ends. Included only by the batch_*.cpp files
// that instantiate it for a family of models.
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <thread>
#include <vector>

#include "batch.hpp"
#include "core/fit_input.hpp"
#include "core/lm.hpp"
#include "core/pack.hpp"
#include "core/threads.hpp"

namespace tessera::fit::detail {

// One SIMD register of floats on the target the library is compiled for: GCC
// splits wider generic vectors into slow sequences, so the pack is never wider
// than the hardware.
#if defined(__AVX512F__)
inline constexpr int lanes = 16;
#elif defined(__AVX__)
inline constexpr int lanes = 8;
#else
inline constexpr int lanes = 4;
#endif
using Lane = core::Pack<float, lanes>;
inline constexpr std::int64_t chunk_pixels = 64;

template <int P>
core::LMConfig<float, P> make_config(const FitOptions& o) {
  core::LMConfig<float, P> c;
  for (int j = 0; j < P; ++j) {
    const ParamConstraint pc = o.constraints.empty() ? ParamConstraint{} : o.constraints[j];
    c.free[j] = !pc.fixed;
    c.lo[j] = float(pc.lo);
    c.hi[j] = float(pc.hi);
  }
  c.max_iter = o.max_iter;
  c.ftol = float(o.tol);
  c.xtol = float(o.tol);
  c.estimator = o.estimator;
  return c;
}

// Copies a scalar state into one lane of a pack state.
template <int P>
void set_lane(core::LMState<Lane, P>& s, int lane, const core::LMState<float, P>& one) {
  for (int j = 0; j < P; ++j) {
    s.p[j].set(lane, one.p[j]);
    s.D[j].set(lane, one.D[j]);
  }
  s.chi2.set(lane, one.chi2);
  s.chi2_err.set(lane, one.chi2_err);
  s.lambda.set(lane, one.lambda);
  s.nu.set(lane, one.nu);
  s.iter.set(lane, one.iter);
  s.state.set(lane, one.state);
  s.fresh.set(lane, one.fresh);
  s.done.set(lane, one.done);
}

template <class Model> class BatchWorker {
 public:
  static constexpr int P = Model::n_params;

  BatchWorker(const Model& m, const FitBatch& b, const core::LMConfig<float, P>& c, FitResults& r)
      : model_(m), batch_(b), cfg_(c), res_(r), n_(int(b.x.size())), y_(n_),
        w_(b.weights ? n_ : 0) {
    for (int l = 0; l < lanes; ++l) pixel_[l] = -1;
    state_.done = Lane::Mask::all_of(true);
  }

  // Fits every pixel handed out by `next` (chunks of chunk_pixels).
  void run(std::atomic<std::int64_t>& next, const std::function<void(std::int64_t)>& progress) {
    const core::LMData<Lane> data{batch_.x.data(), y_.data(), batch_.weights ? w_.data() : nullptr,
                                  n_, 1};
    for (;;) {
      for (int l = 0; l < lanes; ++l)
        if (pixel_[l] < 0) fill_lane(l, next);
      bool busy = false;
      for (int l = 0; l < lanes; ++l) busy |= pixel_[l] >= 0;
      if (!busy) break;
      core::lm_step<P>(model_, data, cfg_, state_);
      bool any_done = false;
      for (int l = 0; l < lanes; ++l) any_done |= pixel_[l] >= 0 && state_.done[l];
      if (any_done) collect_finished();
      if (progress && finished_ >= 256) {
        progress(finished_);
        finished_ = 0;
      }
    }
    if (progress && finished_ > 0) progress(finished_);
  }

 private:
  std::int64_t take_pixel(std::atomic<std::int64_t>& next) {
    if (cur_ == end_) {
      cur_ = next.fetch_add(chunk_pixels);
      if (cur_ >= batch_.n_pix) {
        cur_ = end_ = batch_.n_pix;
        return -1;
      }
      end_ = std::min(cur_ + chunk_pixels, batch_.n_pix);
    }
    return cur_++;
  }

  void write_unfitted(std::int64_t pix, FitState st) {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    std::fill_n(res_.params.begin() + pix * P, P, nan);
    std::fill_n(res_.sigma.begin() + pix * P, P, nan);
    res_.chi2[pix] = nan;
    res_.state[pix] = core::state_value(st);
    res_.iterations[pix] = 0;
    ++finished_;
  }

  // Loads the next fittable pixel into lane l; pixels that need no fit are
  // written out on the way.
  void fill_lane(int l, std::atomic<std::int64_t>& next) {
    for (;;) {
      const std::int64_t pix = take_pixel(next);
      if (pix < 0) return;
      const float* y = batch_.y + pix * n_;
      const float* w = batch_.weights ? batch_.weights + pix * n_ : nullptr;
      FitState unfitted;
      if (!core::accept_spectrum(batch_.mask && batch_.mask[pix], y, w, n_, 1, &unfitted)) {
        write_unfitted(pix, unfitted);
        continue;
      }
      for (int i = 0; i < n_; ++i) y_[i].set(l, y[i]);
      if (w)
        for (int i = 0; i < n_; ++i) w_[i].set(l, w[i]);
      core::LMState<float, P> one;
      core::lm_init<P>(cfg_, batch_.start + pix * P, one);
      set_lane(state_, l, one);
      pixel_[l] = pix;
      return;
    }
  }

  void collect_finished() {
    Lane params[P], sigma[P], state;
    core::lm_finalize<P>(cfg_, n_, state_, params, sigma, state);
    constexpr int nc = core::tri_size<P>;
    Lane cov[nc];  // filled only when asked for
    if (!res_.covariance.empty()) core::lm_covariance<P>(cfg_, n_, state_, cov);
    for (int l = 0; l < lanes; ++l) {
      const std::int64_t pix = pixel_[l];
      if (pix < 0 || !state_.done[l]) continue;
      for (int j = 0; j < P; ++j) {
        res_.params[pix * P + j] = params[j][l];
        res_.sigma[pix * P + j] = sigma[j][l];
      }
      res_.state[pix] = std::int32_t(state[l]);
      if (!res_.covariance.empty())
        for (int k = 0; k < nc; ++k) res_.covariance[pix * nc + k] = cov[k][l];
      res_.chi2[pix] = state[l] <= 1 ? state_.chi2[l] : std::numeric_limits<float>::quiet_NaN();
      res_.iterations[pix] = std::int32_t(state_.iter[l]);
      pixel_[l] = -1;
      ++finished_;
    }
  }

  const Model& model_;
  const FitBatch& batch_;
  const core::LMConfig<float, P>& cfg_;
  FitResults& res_;
  int n_;
  std::vector<Lane> y_, w_;  // the lanes' spectra, point-major: y_[i] holds point i of 16 fits
  core::LMState<Lane, P> state_;
  std::int64_t pixel_[lanes];
  std::int64_t cur_ = 0, end_ = 0;
  std::int64_t finished_ = 0;
};

// covariance_at (batch.hpp) for one model: per pixel, the normal matrix and
// chi-square evaluated at batch.start (scalar arithmetic), then lm_covariance
// as at the end of a fit there.
template <class Model>
void covariance_at(const Model& model, const FitBatch& batch, const std::int32_t* state, const FitOptions& options,
                   float* cov) {
  constexpr int P = Model::n_params, nc = core::tri_size<P>;
  const auto cfg = make_config<P>(options);
  const int n = int(batch.x.size());
  core::parallel_for(batch.n_pix, options.threads, chunk_pixels, [&](std::int64_t pix) {
    float* out = cov + pix * nc;
    if (state[pix] > core::state_value(FitState::iteration_limit)) {
      std::fill_n(out, nc, std::numeric_limits<float>::quiet_NaN());
      return;
    }
    const core::LMData<float> d{batch.x.data(), batch.y + pix * n, batch.weights ? batch.weights + pix * n : nullptr,
                                n, 1};
    core::LMState<float, P> s;
    core::lm_init<P>(cfg, batch.start + pix * P, s);
    core::lm_evaluate<P>(model, d, cfg.estimator, s.p, s.chi2, s.chi2_err, s.H, s.g);
    for (int j = 0; j < P; ++j) s.D[j] = s.H[core::tri(j, j)];
    s.state = float(state[pix]);
    core::lm_covariance<P>(cfg, n, s, out);
  });
}

template <class Model>
void run_batch(const Model& model, const FitBatch& batch, const FitOptions& options,
               FitResults& res) {
  constexpr int P = Model::n_params;
  const auto cfg = make_config<P>(options);
  std::atomic<std::int64_t> next{0};
  const int threads = options.threads > 0 ? options.threads : core::usable_cores();
  const std::int64_t chunks = (batch.n_pix + chunk_pixels - 1) / chunk_pixels;
  core::run_threads(int(std::clamp<std::int64_t>(chunks, 1, threads)), [&] {
    const core::FlushSubnormals flush;  // on every thread of the engine
    BatchWorker<Model> worker(model, batch, cfg, res);
    worker.run(next, options.progress);
  });
}

}  // namespace tessera::fit::detail
