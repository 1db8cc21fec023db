// Published enums of the fit engine. Their numeric values are part of the output
// format (the /state map) and never change once published; new values are added
// at the end.
#pragma once

#include "hd.hpp"

namespace tessera::core {

enum class FitState : int {
  converged = 0,        // relative chi-square change and relative step both below tol
  iteration_limit = 1,  // max_iter reached; parameters are the last accepted ones
  singular = 2,         // a free parameter has no effect on the model (J^T J singular); NaN parameters
  nonfinite_input = 3,  // NaN or infinity in the spectrum or its weights; NaN parameters
  masked = 4,           // excluded by the caller's mask; NaN parameters
  bad_start = 5,        // the model is not finite at the initial parameters; NaN parameters
};

enum class Estimator : int {
  lse = 0,  // (weighted) least squares; sigma scaled by the reduced chi-square
  mle = 1,  // Poisson maximum likelihood; chi2 reports the deviance, sigma from the Fisher information
};

TESSERA_HD constexpr int state_value(FitState s) { return static_cast<int>(s); }

// The number of FitState values, and each one's name as outputs record it (the
// `state_names` attribute, which the plots read): the one list of these names.
inline constexpr int n_fit_states = 6;
constexpr const char* state_name(FitState s) {
  switch (s) {
    case FitState::converged: return "converged";
    case FitState::iteration_limit: return "iteration_limit";
    case FitState::singular: return "singular";
    case FitState::nonfinite_input: return "nonfinite_input";
    case FitState::masked: return "masked";
    case FitState::bad_start: return "bad_start";
  }
  return "unknown";
}

}  // namespace tessera::core
