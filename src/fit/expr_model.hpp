// A model of the user's own as the engine takes it: the expression parsed
// with its parameters and constants, checked, differentiated, and written out
// as the C++ of a model struct (core/model.hpp) that the run-time compiler
// (jit.hpp) builds into the same batch engine as the built-in models.
//
// The generated model evaluates the value and every derivative in one pass
// over the graph's nodes in evaluation order, each node once (the common
// subexpressions of the value and the derivatives are shared). Powers with a
// small integer exponent become products, so x^2 costs one multiplication.
//
// Offset. When the expression is P + (the rest), P the first parameter and
// the rest independent of it (offset + amp*..., the usual form), the model
// says additive_offset and returns the rest: the engine then keeps float
// precision on small signals over a large baseline (core/model.hpp).
#pragma once

#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "expr.hpp"

namespace tessera::fit {

struct ExprSource {
  std::string expr;                                   // the value at the sweep value x
  std::vector<std::string> params;                    // in output order
  std::vector<std::pair<std::string, double>> consts;  // named constants
  // Named intermediate expressions, each usable by the ones after it and by
  // the value (model files' `let`).
  std::vector<std::pair<std::string, std::string>> lets = {};
  // Maps computed per pixel from the fitted parameters (no x), /derived/<name>.
  std::vector<std::pair<std::string, std::string>> derives = {};
};

class ExprModel {
 public:
  // Parses and checks: std::invalid_argument (expr::ParseError for syntax)
  // for an empty parameter list, a repeated or reserved name, a name that is
  // neither x, a parameter, a constant nor an earlier definition, a parameter
  // listed but not used, a derived quantity that uses x.
  explicit ExprModel(const ExprSource& source);

  const ExprSource& source() const { return source_; }
  int n_params() const { return int(source_.params.size()); }
  const std::vector<std::string>& param_names() const { return source_.params; }
  bool additive_offset() const { return additive_offset_; }
  // The expression as printed from the graph (constants substituted).
  std::string canonical() const;

  // f(x; p) and its derivatives J[j] = df/dp_j in double, from the graph
  // (model_values; the tests check the derivatives against differences).
  double value(double x, std::span<const double> p) const;
  void derivatives(double x, std::span<const double> p, double* J) const;

  // Derived quantity k (source().derives) at the parameters p, in double.
  int n_derived() const { return int(derived_.size()); }
  double derived(int k, std::span<const double> p) const;
  // Its gradient in the parameters, g[j] = d derived_k / d p_j.
  void derived_gradient(int k, std::span<const double> p, double* g) const;

  // The C++ of the model: a struct `name` satisfying core/model.hpp.
  std::string cpp_struct(const std::string& name) const;

 private:
  ExprSource source_;
  mutable expr::Graph graph_;
  int root_ = -1;   // the whole value
  int rest_ = -1;   // the value without the offset (additive_offset_), else root_
  bool additive_offset_ = false;
  std::vector<int> jacobian_;  // d root / d p_j
  std::vector<int> derived_;   // the derived quantities' nodes
  std::vector<std::vector<int>> derived_gradient_;  // their derivatives' nodes
};

}  // namespace tessera::fit
