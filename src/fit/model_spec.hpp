// The model a user asks for at run time (name, number of peaks, background), its
// parameter names and units, and the evaluation of its value in double for
// simulators and tests. The fit kernels themselves are compile-time
// instantiations of the src/core models, chosen by dispatch in batch.cpp.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/peak_layout.hpp"

namespace tessera::fit {

enum class ModelKind { lorentzian, gaussian, stretched_exp, damped_cosine, expression };

class CompiledModel;  // a model of the user's own (user_model.hpp)

using core::max_peaks;

struct ModelSpec {
  ModelKind kind = ModelKind::lorentzian;
  int n_peaks = 1;               // peak models only, 1..max_peaks
  bool linear_background = false;  // peak models only: adds `slope`
  double x_mid = 0;              // origin of the slope term: middle of the sweep
  // expression: the user's model, compiled; its start values when there is no
  // better start (the mean spectrum's fit starts from them).
  std::shared_ptr<const CompiledModel> user;

  int n_params() const;
  std::string model_name() const;             // "lorentzian", ...
  std::vector<std::string> param_names() const;  // DESIGN.md order
  // Unit of each parameter given the unit of x (e.g. "MHz") and of the data.
  std::vector<std::string> param_units(const std::string& x_unit, const std::string& y_unit) const;
  bool is_peak_model() const { return kind == ModelKind::lorentzian || kind == ModelKind::gaussian; }
  // Where the peak parameters are (peak models only).
  core::PeakLayout layout() const { return {n_peaks, linear_background}; }
};

// Builds a spec from user words; throws std::invalid_argument with a one-line
// message for an unknown model or a peak count out of range.
ModelSpec make_model_spec(const std::string& name, int n_peaks, const std::string& background,
                          std::span<const float> sweep);

// The spec of a model of the user's own (compiled: user_model.hpp).
ModelSpec expression_spec(std::shared_ptr<const CompiledModel> model);

// Model values f(x_i; p) in double (simulation, tests).
std::vector<double> model_values(const ModelSpec& spec, std::span<const double> params,
                                 std::span<const double> x);

}  // namespace tessera::fit
