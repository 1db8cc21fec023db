// A model of the user's own, compiled and loaded: the expression model
// (expr_model.hpp) generated as C++ with the batch engine around it, built by
// the run-time compiler into the model cache (jit.hpp), and fitted through
// fit_batch like a built-in model (ModelKind::expression).
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "batch.hpp"
#include "expr_model.hpp"
#include "jit.hpp"

namespace tessera::fit {

// A start value: a number, or read off the mean spectrum (model files): the
// baseline is its median, the depth (median - minimum) / value (the lines).
struct StartRule {
  enum class Kind { value, baseline, depth } kind = Kind::value;
  double value = 0;
};

// Everything a user says of a model of their own (--expr options, or a model
// file): the expression and per parameter its start, unit and bounds.
struct UserModelDescription {
  std::string name = "expression";  // a model file's name, e.g. esr14n
  std::string origin = "--expr";    // where it came from (a file's path)
  ExprSource source;
  std::vector<StartRule> start;     // one per parameter
  std::vector<std::string> units;   // one per parameter or none: "x", "y" or a unit's name
  std::vector<std::pair<double, double>> bounds;  // one per parameter or none
  std::vector<std::string> derive_units;          // one per derived quantity or none
};

// The model as text, one item per line (fingerprints, output attributes): its
// value, parameters with starts, units and bounds, constants, definitions,
// derived maps.
std::string describe_text(const UserModelDescription& d);

// The whole translation unit tessera compiles for a model: for the CPU engine
// (jit.hpp), and for the GPU (NVRTC, cuda/user_kernels.hpp). Both hold the
// same model struct (ExprModel::cpp_struct), so the GPU runs the arithmetic
// the CPU tests check.
std::string user_model_source(const ExprModel& model);
std::string user_model_cuda_source(const ExprModel& model);

class CompiledModel {
 public:
  // Checks the model (std::invalid_argument, expr::ParseError), generates it,
  // compiles it unless the cache has it, and loads it. start: one value per
  // parameter (the start of the mean spectrum's fit).
  CompiledModel(const ExprSource& source, std::vector<double> start);
  explicit CompiledModel(const UserModelDescription& description);

  const ExprModel& model() const { return model_; }
  const UserModelDescription& description() const { return description_; }
  // The start values for a mean spectrum y (its rules applied), or without one
  // (baseline 1, depth 0.01: finite values of the right sign for normalised data).
  std::vector<double> start_for(std::span<const float> y) const;
  std::vector<double> start() const { return start_for({}); }
  // The parameters' units given those of x and of the data.
  std::vector<std::string> units(const std::string& x_unit, const std::string& y_unit) const;
  // Where the object is, and whether this call compiled it (else it came from the cache).
  const std::string& object_path() const { return object_; }
  bool compiled_now() const { return compiled_now_; }

  // fit_batch for this model (results sized by the caller).
  void fit(const FitBatch& batch, const FitOptions& options, FitResults& results) const;
  // covariance_at for this model (cov sized by the caller).
  void covariance(const FitBatch& batch, const std::int32_t* state, const FitOptions& options, float* cov) const;

 private:
  using FitFn = void (*)(const FitBatch*, const FitOptions*, FitResults*);
  using CovarianceFn = void (*)(const FitBatch*, const std::int32_t*, const FitOptions*, float*);
  UserModelDescription description_;
  ExprModel model_;
  std::string object_;
  bool compiled_now_ = false;
  std::unique_ptr<jit::Library> library_;
  FitFn fit_ = nullptr;
  CovarianceFn covariance_ = nullptr;
};

}  // namespace tessera::fit
