#include "expr_model.hpp"

#include <cmath>
#include <cstdio>
#include <set>
#include <stdexcept>

namespace tessera::fit {

namespace {

bool is_identifier(const std::string& s) {
  if (s.empty() || !(std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  return true;
}

const std::set<std::string> reserved = {"x",    "exp",  "log", "sqrt", "abs", "sin",  "cos", "tan",
                                        "atan", "tanh", "erf", "pow",  "min", "max", "sign", "step",
                                        "floor"};

// The terms of a chain of + and - at the top of a node, with their signs.
void terms(const expr::Graph& g, int id, bool negative, std::vector<std::pair<int, bool>>& out) {
  const expr::Node& n = g.node(id);
  if (n.op == expr::Op::add || n.op == expr::Op::sub) {
    terms(g, n.a, negative, out);
    terms(g, n.b, n.op == expr::Op::sub ? !negative : negative, out);
  } else if (n.op == expr::Op::neg) {
    terms(g, n.a, !negative, out);
  } else {
    out.emplace_back(id, negative);
  }
}

// A double as a C++ literal with the same bits.
std::string literal(double v) {
  if (std::isnan(v)) return "S(NAN)";
  if (std::isinf(v)) return v > 0 ? "S(INFINITY)" : "S(-INFINITY)";
  char buf[64];
  std::snprintf(buf, sizeof buf, "S(%a)", v);
  return buf;
}

std::string var(int id) { return std::string("n").append(std::to_string(id)); }

// b^k for a small integer k by repeated squaring, as products of the name `b`.
std::string integer_power(const std::string& b, long k) {
  const bool inverse = k < 0;
  unsigned long e = static_cast<unsigned long>(inverse ? -k : k);
  std::string result, square = b;
  while (e > 0) {
    if (e & 1) result = result.empty() ? square : "(" + result + " * " + square + ")";
    e >>= 1;
    if (e > 0) square = "(" + square + " * " + square + ")";
  }
  if (result.empty()) result = "T(S(1))";
  return inverse ? "T(S(1)) / " + result : result;
}

}  // namespace

ExprModel::ExprModel(const ExprSource& source) : source_(source) {
  if (source_.params.empty()) throw std::invalid_argument("--params: a model needs at least one parameter");
  std::set<std::string> seen;
  auto check_name = [&](const std::string& n, const char* what) {
    if (!is_identifier(n)) throw std::invalid_argument(std::string(what) + ": '" + n + "' is not a name");
    if (reserved.count(n)) throw std::invalid_argument(std::string(what) + ": '" + n + "' is reserved");
    if (!seen.insert(n).second) throw std::invalid_argument(std::string(what) + ": '" + n + "' is given twice");
  };
  for (const auto& p : source_.params) check_name(p, "--params");
  for (const auto& [n, v] : source_.consts) {
    check_name(n, "--const");
    if (!std::isfinite(v)) throw std::invalid_argument("--const " + n + ": value must be finite");
  }
  std::vector<std::pair<std::string, int>> defined;  // lets parsed so far
  auto resolver = [&](std::string what) {
    return [this, &defined, what](expr::Graph& g, std::string_view name, int pos) {
      if (name == "x") return g.x();
      for (std::size_t j = 0; j < source_.params.size(); ++j)
        if (source_.params[j] == name) return g.param(int(j));
      for (const auto& [n, v] : source_.consts)
        if (n == name) return g.constant(v);
      for (const auto& [n, id] : defined)
        if (n == name) return id;
      throw expr::ParseError(what + "unknown name '" + std::string(name) +
                                 "' (not x, a parameter, a constant or a definition)",
                             pos);
    };
  };
  for (const auto& [n, text] : source_.lets) {
    check_name(n, "let");
    defined.emplace_back(n, expr::parse(graph_, text, resolver("let " + n + ": ")));
  }
  root_ = expr::parse(graph_, source_.expr, resolver(""));
  for (const auto& [n, text] : source_.derives) {
    check_name(n, "derive");
    const int id = expr::parse(graph_, text, resolver("derive " + n + ": "));
    if (graph_.depends_on_x(id))
      throw std::invalid_argument("derive " + n + ": uses x, but a derived map is a function of the parameters");
    derived_.push_back(id);
    derived_gradient_.emplace_back();
    for (int j = 0; j < n_params(); ++j) derived_gradient_.back().push_back(graph_.derivative(id, j));
  }
  for (int j = 0; j < n_params(); ++j)
    if (!graph_.depends_on_param(root_, j))
      throw std::invalid_argument("--params: '" + source_.params[std::size_t(j)] +
                                  "' is listed but the expression does not use it");
  for (int j = 0; j < n_params(); ++j) jacobian_.push_back(graph_.derivative(root_, j));

  // The offset: the first parameter as a term of the top-level sum, alone.
  std::vector<std::pair<int, bool>> t;
  terms(graph_, root_, false, t);
  const int p0 = graph_.param(0);
  int offset_terms = 0;
  bool offset_positive = false;
  for (const auto& [id, neg] : t) {
    if (id == p0) ++offset_terms, offset_positive = !neg;
    else if (graph_.depends_on_param(id, 0)) offset_terms = 2;  // p0 elsewhere too
  }
  rest_ = root_;
  if (offset_terms == 1 && offset_positive && t.size() > 1) {
    additive_offset_ = true;
    int rest = -1;
    for (const auto& [id, neg] : t) {
      if (id == p0) continue;
      if (rest < 0) rest = neg ? graph_.unary(expr::Op::neg, id) : id;
      else rest = graph_.binary(neg ? expr::Op::sub : expr::Op::add, rest, id);
    }
    rest_ = rest;
  }
}

std::string ExprModel::canonical() const { return graph_.print(root_, source_.params); }

double ExprModel::value(double x, std::span<const double> p) const { return graph_.eval(root_, x, p); }

void ExprModel::derivatives(double x, std::span<const double> p, double* J) const {
  graph_.eval(jacobian_, x, p, J);
}

double ExprModel::derived(int k, std::span<const double> p) const {
  return graph_.eval(derived_.at(std::size_t(k)), 0.0, p);
}

void ExprModel::derived_gradient(int k, std::span<const double> p, double* g) const {
  graph_.eval(derived_gradient_.at(std::size_t(k)), 0.0, p, g);
}

std::string ExprModel::cpp_struct(const std::string& name) const {
  using expr::Op;
  std::vector<int> roots{rest_};
  for (int j = additive_offset_ ? 1 : 0; j < n_params(); ++j) roots.push_back(jacobian_[std::size_t(j)]);
  const std::vector<int> order = graph_.order(roots);
  // Divisions cost several times a multiplication: each denominator gets one
  // reciprocal, shared by every division by it (a division by a power of two
  // is an exact multiplication already).
  std::set<int> denominators;
  for (int k : order)
    if (graph_.node(k).op == Op::div) denominators.insert(graph_.node(k).b);
  auto exact_reciprocal = [&](int id) {
    const expr::Node& d = graph_.node(id);
    int e = 0;
    return d.op == Op::constant && std::frexp(d.value, &e) == 0.5 && std::isfinite(1 / d.value);
  };
  std::string body;
  for (int k : order) {
    const expr::Node& n = graph_.node(k);
    const std::string a = n.a >= 0 ? var(n.a) : "", b = n.b >= 0 ? var(n.b) : "";
    std::string e;
    switch (n.op) {
      case Op::constant: e = "T(" + literal(n.value) + ")"; break;
      case Op::x: e = "T(x)"; break;
      case Op::param: e = "p[" + std::to_string(n.index) + "]"; break;
      case Op::neg: e = "-" + a; break;
      case Op::add: e = a + " + " + b; break;
      case Op::sub: e = a + " - " + b; break;
      case Op::mul: e = a + " * " + b; break;
      case Op::div:
        if (exact_reciprocal(n.b)) e = a + " * T(" + literal(1 / graph_.node(n.b).value) + ")";
        else if (graph_.node(n.a).op == Op::constant && graph_.node(n.a).value == 1) e = "r" + b.substr(1);
        else e = a + " * r" + b.substr(1);
        break;
      case Op::exp: e = "vexp(" + a + ")"; break;
      case Op::log: e = "vlog(" + a + ")"; break;
      case Op::sqrt: e = "vsqrt(" + a + ")"; break;
      case Op::abs: e = "vabs(" + a + ")"; break;
      case Op::sin: e = "vsin(" + a + ")"; break;
      case Op::cos: e = "vcos(" + a + ")"; break;
      case Op::tan: e = "vtan(" + a + ")"; break;
      case Op::atan: e = "vatan(" + a + ")"; break;
      case Op::tanh: e = "vtanh(" + a + ")"; break;
      case Op::erf: e = "verf(" + a + ")"; break;
      case Op::sign: e = "select(" + a + " > T(0), T(1), select(" + a + " < T(0), T(-1), T(0)))"; break;
      case Op::step: e = "select(" + a + " > T(0), T(1), T(0))"; break;
      case Op::floor: e = "vfloor(" + a + ")"; break;
      case Op::min: e = "select(" + a + " <= " + b + ", " + a + ", " + b + ")"; break;
      case Op::max: e = "select(" + a + " >= " + b + ", " + a + ", " + b + ")"; break;
      case Op::pow: {
        const expr::Node& ex = graph_.node(n.b);
        const double v = ex.value;
        if (ex.op == Op::constant && v == std::round(v) && std::fabs(v) <= 64) e = integer_power(a, long(v));
        else if (ex.op == Op::constant && v == 0.5) e = "vsqrt(" + a + ")";
        else e = "vexp(" + b + " * vlog(" + a + "))";  // a > 0; NaN otherwise, which rejects the step
        break;
      }
    }
    body += "    const T " + var(k) + " = " + e + ";\n";
    if (denominators.count(k) && !exact_reciprocal(k))
      body += "    const T r" + std::to_string(k) + " = T(S(1)) / " + var(k) + ";\n";
  }
  std::string out;
  out += "struct " + name + " {\n";
  out += "  static constexpr int n_params = " + std::to_string(n_params()) + ";\n";
  out += std::string("  static constexpr bool additive_offset = ") + (additive_offset_ ? "true" : "false") + ";\n";
  out += "  template <class T>\n";
  out += "  TESSERA_HD void eval(tessera::core::ScalarOf<T> x, const T* p, T& f, T* J) const {\n";
  out += "    using namespace tessera::core;\n";
  out += "    using S = ScalarOf<T>;\n";
  out += "    (void)x;\n";
  out += body;
  out += "    f = " + var(rest_) + ";\n";
  for (int j = 0; j < n_params(); ++j)
    out += "    J[" + std::to_string(j) + "] = " + (j == 0 && additive_offset_ ? std::string("T(1)") : var(jacobian_[std::size_t(j)])) + ";\n";
  out += "  }\n};\n";
  return out;
}

}  // namespace tessera::fit
