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

// The whole translation unit tessera compiles for a model.
std::string user_model_source(const ExprModel& model);

class CompiledModel {
 public:
  // Checks the model (std::invalid_argument, expr::ParseError), generates it,
  // compiles it unless the cache has it, and loads it. start: one value per
  // parameter (the start of the mean spectrum's fit).
  CompiledModel(const ExprSource& source, std::vector<double> start);

  const ExprModel& model() const { return model_; }
  const std::vector<double>& start() const { return start_; }
  // Where the object is, and whether this call compiled it (else it came from the cache).
  const std::string& object_path() const { return object_; }
  bool compiled_now() const { return compiled_now_; }

  // fit_batch for this model (results sized by the caller).
  void fit(const FitBatch& batch, const FitOptions& options, FitResults& results) const;

 private:
  using FitFn = void (*)(const FitBatch*, const FitOptions*, FitResults*);
  ExprModel model_;
  std::vector<double> start_;
  std::string object_;
  bool compiled_now_ = false;
  std::unique_ptr<jit::Library> library_;
  FitFn fit_ = nullptr;
};

}  // namespace tessera::fit
