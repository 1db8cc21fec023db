// Models of the user's own: an expression of the sweep value `x`, parameters
// and constants, parsed into a graph whose equal subexpressions are one node
// (hash-consed), simplified as it is built, differentiated symbolically, and
// evaluated in double or printed back as text (and, by expr_codegen, as the
// C++ of a model for the engine).
//
// The language: numbers (1, 2.5, 1e-3), + - * /, ^ and ** for powers (right
// associative, binding tighter than unary minus: -x^2 is -(x^2)), parentheses,
// and the functions exp log sqrt abs sin cos tan atan tanh erf pow(a, b)
// min(a, b) max(a, b) floor(a), and sign(a) (-1, 0 or 1) and step(a) (1 where
// a > 0, else 0), which the derivatives of abs, min and max use (floor's is 0:
// for a grid index, e.g. Gpufit's GAUSS_2D over the point number). Names are resolved
// by the caller (x, parameters, constants, definitions).
//
// Derivatives. min and max have the derivative of the argument they take (the
// first where the two are equal); abs that of its argument times its sign (0
// at 0). Where a function is not differentiable the engine sees a one-sided
// derivative, which a least-squares step handles as it handles a kink.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace tessera::fit::expr {

enum class Op : std::uint8_t {
  constant, x, param,                        // leaves
  neg, exp, log, sqrt, abs, sin, cos, tan,   // unary
  atan, tanh, erf, sign, step,               // sign(a) in {-1, 0, 1}; step(a) = a > 0 ? 1 : 0
  add, sub, mul, div, pow, min, max,         // binary
  floor,                                     // unary, added later: largest integer <= a
};

// The name of a function or operator as the language spells it ("exp", "+").
const char* op_name(Op op);

struct Node {
  Op op = Op::constant;
  double value = 0;  // constant
  int index = 0;     // param: the parameter's index
  int a = -1, b = -1;  // operands
};

// A syntax error: what() is "expression: <what> at position N" (N counted from 1).
struct ParseError : std::invalid_argument {
  ParseError(const std::string& what, int position);
  int position;  // 1-based column in the text
};

class Graph {
 public:
  // Leaves and operations; each returns the id of a node equal to the one
  // asked for (an existing one when there is one, a simplified form when
  // there is one: constants folded, 0 + a = a, 1 * a = a, 0 * a = 0, ...).
  int constant(double v);
  int x();
  int param(int index);
  int unary(Op op, int a);
  int binary(Op op, int a, int b);

  const Node& node(int id) const { return nodes_.at(std::size_t(id)); }
  int size() const { return int(nodes_.size()); }

  // d(node id)/d(parameter j), a node of this graph (memoised).
  int derivative(int id, int j);
  // Whether the node depends on parameter j / on x.
  bool depends_on_param(int id, int j) const;
  bool depends_on_x(int id) const;

  // The node's value at x for parameters p, in double.
  double eval(int id, double x, std::span<const double> p) const;
  // Several nodes at once, sharing their common subexpressions.
  void eval(std::span<const int> ids, double x, std::span<const double> p, double* out) const;

  // The nodes that `roots` need, each after its operands (a valid evaluation order).
  std::vector<int> order(std::span<const int> roots) const;

  // Text that parses back to the same node: numbers in their shortest exact
  // form, parameters by `names`, only the parentheses the precedence needs.
  std::string print(int id, std::span<const std::string> param_names) const;

 private:
  int intern(const Node& n);
  int fold(Op op, int a, int b);  // -1 when no simplification applies

  std::vector<Node> nodes_;
  std::map<std::tuple<int, std::uint64_t, int, int, int>, int> index_;  // op, value bits, index, a, b
  std::map<std::pair<int, int>, int> derivatives_;
};

// Resolves a name at a position of the text to a node of the graph (x, a
// parameter, a constant, a definition); throws ParseError for an unknown name.
using Resolver = std::function<int(Graph&, std::string_view name, int position)>;

// Parses `text` into the graph; returns the root. Throws ParseError.
int parse(Graph& graph, std::string_view text, const Resolver& resolve);

}  // namespace tessera::fit::expr
