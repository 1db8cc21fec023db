#include "expr.hpp"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <numbers>

namespace tessera::fit::expr {

namespace {

bool is_unary(Op op) { return (op >= Op::neg && op <= Op::step) || op == Op::floor; }
bool is_binary(Op op) { return op >= Op::add && op <= Op::max; }

double apply(Op op, double a, double b) {
  switch (op) {
    case Op::neg: return -a;
    case Op::exp: return std::exp(a);
    case Op::log: return std::log(a);
    case Op::sqrt: return std::sqrt(a);
    case Op::abs: return std::fabs(a);
    case Op::sin: return std::sin(a);
    case Op::cos: return std::cos(a);
    case Op::tan: return std::tan(a);
    case Op::atan: return std::atan(a);
    case Op::tanh: return std::tanh(a);
    case Op::erf: return std::erf(a);
    case Op::sign: return a > 0 ? 1.0 : a < 0 ? -1.0 : 0.0;
    case Op::step: return a > 0 ? 1.0 : 0.0;
    case Op::floor: return std::floor(a);
    case Op::add: return a + b;
    case Op::sub: return a - b;
    case Op::mul: return a * b;
    case Op::div: return a / b;
    case Op::pow: return std::pow(a, b);
    case Op::min: return a <= b ? a : b;
    case Op::max: return a >= b ? a : b;
    default: return NAN;
  }
}

}  // namespace

const char* op_name(Op op) {
  switch (op) {
    case Op::constant: return "constant";
    case Op::x: return "x";
    case Op::param: return "param";
    case Op::neg: return "-";
    case Op::exp: return "exp";
    case Op::log: return "log";
    case Op::sqrt: return "sqrt";
    case Op::abs: return "abs";
    case Op::sin: return "sin";
    case Op::cos: return "cos";
    case Op::tan: return "tan";
    case Op::atan: return "atan";
    case Op::tanh: return "tanh";
    case Op::erf: return "erf";
    case Op::sign: return "sign";
    case Op::step: return "step";
    case Op::floor: return "floor";
    case Op::add: return "+";
    case Op::sub: return "-";
    case Op::mul: return "*";
    case Op::div: return "/";
    case Op::pow: return "pow";
    case Op::min: return "min";
    case Op::max: return "max";
  }
  return "?";
}

ParseError::ParseError(const std::string& what, int pos)
    : std::invalid_argument("expression: " + what + " at position " + std::to_string(pos)), position(pos) {}

// ---- building ------------------------------------------------------------------------

int Graph::intern(const Node& n) {
  const auto key = std::make_tuple(int(n.op), std::bit_cast<std::uint64_t>(n.value), n.index, n.a, n.b);
  const auto it = index_.find(key);
  if (it != index_.end()) return it->second;
  nodes_.push_back(n);
  const int id = int(nodes_.size()) - 1;
  index_.emplace(key, id);
  return id;
}

int Graph::constant(double v) { return intern({Op::constant, v, 0, -1, -1}); }
int Graph::x() { return intern({Op::x, 0, 0, -1, -1}); }
int Graph::param(int index) { return intern({Op::param, 0, index, -1, -1}); }

int Graph::fold(Op op, int a, int b) {
  const Node A = node(a);  // copies: building nodes below may move the storage
  const bool ca = A.op == Op::constant;
  if (is_unary(op)) {
    if (ca) return constant(apply(op, A.value, 0));
    if (op == Op::neg && A.op == Op::neg) return A.a;  // -(-a)
    return -1;
  }
  const Node B = node(b);
  const bool cb = B.op == Op::constant;
  if (ca && cb) return constant(apply(op, A.value, B.value));
  auto is = [&](const Node& n, double v) { return n.op == Op::constant && n.value == v; };
  switch (op) {
    case Op::add:
      if (is(A, 0)) return b;
      if (is(B, 0)) return a;
      if (B.op == Op::neg) return binary(Op::sub, a, B.a);  // a + (-b) = a - b
      break;
    case Op::sub:
      if (is(B, 0)) return a;
      if (is(A, 0)) return unary(Op::neg, b);
      if (a == b) return constant(0);
      if (B.op == Op::neg) return binary(Op::add, a, B.a);  // a - (-b) = a + b
      break;
    case Op::mul:
      if (is(A, 0) || is(B, 0)) return constant(0);
      if (is(A, 1)) return b;
      if (is(B, 1)) return a;
      if (is(A, -1)) return unary(Op::neg, b);
      if (is(B, -1)) return unary(Op::neg, a);
      if (A.op == Op::neg && B.op == Op::neg) return binary(Op::mul, A.a, B.a);
      if (A.op == Op::neg) return unary(Op::neg, binary(Op::mul, A.a, b));
      if (B.op == Op::neg) return unary(Op::neg, binary(Op::mul, a, B.a));
      break;
    case Op::div:
      if (is(A, 0)) return constant(0);
      if (is(B, 1)) return a;
      if (A.op == Op::neg) return unary(Op::neg, binary(Op::div, A.a, b));
      break;
    case Op::pow:
      if (is(B, 1)) return a;
      if (is(B, 0)) return constant(1);
      break;
    case Op::min:
    case Op::max:
      if (a == b) return a;
      break;
    default: break;
  }
  return -1;
}

int Graph::unary(Op op, int a) {
  if (!is_unary(op)) throw std::logic_error("expr: not a unary operation");
  if (const int f = fold(op, a, -1); f >= 0) return f;
  return intern({op, 0, 0, a, -1});
}

int Graph::binary(Op op, int a, int b) {
  if (!is_binary(op)) throw std::logic_error("expr: not a binary operation");
  if (const int f = fold(op, a, b); f >= 0) return f;
  return intern({op, 0, 0, a, b});
}

// ---- derivatives -----------------------------------------------------------------------

int Graph::derivative(int id, int j) {
  if (const auto it = derivatives_.find({id, j}); it != derivatives_.end()) return it->second;
  const Node n = node(id);  // a copy: the calls below may grow nodes_
  int d = -1;
  auto D = [&](int k) { return derivative(k, j); };
  auto mul = [&](int p, int q) { return binary(Op::mul, p, q); };
  auto div = [&](int p, int q) { return binary(Op::div, p, q); };
  auto add = [&](int p, int q) { return binary(Op::add, p, q); };
  auto sub = [&](int p, int q) { return binary(Op::sub, p, q); };
  auto c = [&](double v) { return constant(v); };
  switch (n.op) {
    case Op::constant:
    case Op::x:
    case Op::sign:
    case Op::step:
    case Op::floor: d = c(0); break;
    case Op::param: d = c(n.index == j ? 1 : 0); break;
    case Op::neg: d = unary(Op::neg, D(n.a)); break;
    case Op::exp: d = mul(id, D(n.a)); break;
    case Op::log: d = div(D(n.a), n.a); break;
    case Op::sqrt: d = div(D(n.a), mul(c(2), id)); break;
    case Op::abs: d = mul(D(n.a), unary(Op::sign, n.a)); break;
    case Op::sin: d = mul(unary(Op::cos, n.a), D(n.a)); break;
    case Op::cos: d = unary(Op::neg, mul(unary(Op::sin, n.a), D(n.a))); break;
    case Op::tan: d = mul(add(c(1), mul(id, id)), D(n.a)); break;
    case Op::atan: d = div(D(n.a), add(c(1), mul(n.a, n.a))); break;
    case Op::tanh: d = mul(sub(c(1), mul(id, id)), D(n.a)); break;
    case Op::erf:
      d = mul(mul(c(2 / std::sqrt(std::numbers::pi)), unary(Op::exp, unary(Op::neg, mul(n.a, n.a)))), D(n.a));
      break;
    case Op::add: d = add(D(n.a), D(n.b)); break;
    case Op::sub: d = sub(D(n.a), D(n.b)); break;
    case Op::mul: d = add(mul(D(n.a), n.b), mul(n.a, D(n.b))); break;
    case Op::div:
      // (a/b)' = a'/b - (a/b) b'/b: reuses the quotient, one division fewer.
      d = sub(div(D(n.a), n.b), div(mul(id, D(n.b)), n.b));
      break;
    case Op::pow: {
      const Node e = node(n.b);  // a copy: building nodes may move the graph's storage
      if (e.op == Op::constant) {
        d = mul(mul(c(e.value), binary(Op::pow, n.a, c(e.value - 1))), D(n.a));
      } else {
        // (a^b)' = a^b (b' log a + b a'/a)
        d = mul(id, add(mul(D(n.b), unary(Op::log, n.a)), div(mul(n.b, D(n.a)), n.a)));
      }
      break;
    }
    case Op::min:
    case Op::max: {
      // The derivative of the argument taken: min takes b where a > b, max where b > a.
      const int pick_b = n.op == Op::min ? unary(Op::step, sub(n.a, n.b)) : unary(Op::step, sub(n.b, n.a));
      d = add(D(n.a), mul(sub(D(n.b), D(n.a)), pick_b));
      break;
    }
  }
  derivatives_[{id, j}] = d;
  return d;
}

bool Graph::depends_on_param(int id, int j) const {
  for (int k : order(std::span<const int>(&id, 1)))
    if (node(k).op == Op::param && node(k).index == j) return true;
  return false;
}

bool Graph::depends_on_x(int id) const {
  for (int k : order(std::span<const int>(&id, 1)))
    if (node(k).op == Op::x) return true;
  return false;
}

// ---- evaluation and order --------------------------------------------------------------

std::vector<int> Graph::order(std::span<const int> roots) const {
  // Operands always have smaller ids than the node (a node is interned after
  // them), so the needed ids in increasing order are an evaluation order.
  std::vector<char> need(nodes_.size(), 0);
  for (int r : roots) need[std::size_t(r)] = 1;
  for (int k = int(nodes_.size()) - 1; k >= 0; --k) {
    if (!need[std::size_t(k)]) continue;
    const Node& n = nodes_[std::size_t(k)];
    if (n.a >= 0) need[std::size_t(n.a)] = 1;
    if (n.b >= 0) need[std::size_t(n.b)] = 1;
  }
  std::vector<int> out;
  for (int k = 0; k < int(nodes_.size()); ++k)
    if (need[std::size_t(k)]) out.push_back(k);
  return out;
}

void Graph::eval(std::span<const int> ids, double xv, std::span<const double> p, double* out) const {
  std::vector<double> v(nodes_.size());
  for (int k : order(ids)) {
    const Node& n = nodes_[std::size_t(k)];
    switch (n.op) {
      case Op::constant: v[std::size_t(k)] = n.value; break;
      case Op::x: v[std::size_t(k)] = xv; break;
      case Op::param: v[std::size_t(k)] = p[std::size_t(n.index)]; break;
      default:
        v[std::size_t(k)] = apply(n.op, v[std::size_t(n.a)], n.b >= 0 ? v[std::size_t(n.b)] : 0.0);
    }
  }
  for (std::size_t i = 0; i < ids.size(); ++i) out[i] = v[std::size_t(ids[i])];
}

double Graph::eval(int id, double xv, std::span<const double> p) const {
  double r;
  eval(std::span<const int>(&id, 1), xv, p, &r);
  return r;
}

// ---- printing -------------------------------------------------------------------------

namespace {

// Binding strength: + - 1, * / 2, unary minus 3, ^ 4, leaves and calls 5.
int precedence(Op op) {
  switch (op) {
    case Op::add:
    case Op::sub: return 1;
    case Op::mul:
    case Op::div: return 2;
    case Op::neg: return 3;
    case Op::pow: return 4;
    default: return 5;
  }
}

std::string number_text(double v) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);  // shortest exact form
  return std::string(buf, r.ptr);
}

}  // namespace

std::string Graph::print(int id, std::span<const std::string> names) const {
  const Node& n = node(id);
  auto wrap = [&](int k, bool paren) {
    const std::string t = print(k, names);
    return paren ? "(" + t + ")" : t;
  };
  switch (n.op) {
    case Op::constant: {
      const std::string t = number_text(std::fabs(n.value));
      return std::signbit(n.value) ? std::string("(-").append(t).append(")") : t;
    }
    case Op::x: return "x";
    case Op::param: return names[std::size_t(n.index)];
    case Op::neg: return std::string("-").append(wrap(n.a, precedence(node(n.a).op) <= 3));
    case Op::add:
    case Op::sub:
    case Op::mul:
    case Op::div: {
      const int p = precedence(n.op);
      // Left operand: parenthesised only when it binds more loosely. Right
      // operand also when it binds equally (the text parses left to right, so
      // a - (b - c) and even a + (b + c) keep theirs: the same node, not just
      // the same value) and when it is a unary minus (a - -b would not parse).
      const int pr = precedence(node(n.b).op);
      return wrap(n.a, precedence(node(n.a).op) < p) + " " + op_name(n.op) + " " + wrap(n.b, pr <= p || pr == 3);
    }
    case Op::pow:
      // Right associative: the base needs parentheses at equal precedence.
      return wrap(n.a, precedence(node(n.a).op) <= 4) + "^" + wrap(n.b, precedence(node(n.b).op) < 4);
    case Op::min:
    case Op::max: return std::string(op_name(n.op)) + "(" + print(n.a, names) + ", " + print(n.b, names) + ")";
    default: return std::string(op_name(n.op)) + "(" + print(n.a, names) + ")";
  }
}

// ---- parsing ------------------------------------------------------------------------

namespace {

class Parser {
 public:
  Parser(Graph& g, std::string_view t, const Resolver& r) : g_(g), t_(t), resolve_(r) {}

  int parse() {
    skip();
    if (at_end()) throw ParseError("empty expression", 1);
    const int e = sum();
    skip();
    if (!at_end()) {
      if (t_[i_] == ')') throw ParseError("unbalanced ')'", pos());
      throw ParseError("unexpected '" + std::string(1, t_[i_]) + "'", pos());
    }
    return e;
  }

 private:
  int pos() const { return int(i_) + 1; }
  bool at_end() const { return i_ >= t_.size(); }
  void skip() {
    while (!at_end() && std::isspace(static_cast<unsigned char>(t_[i_]))) ++i_;
  }
  bool take(std::string_view s) {
    skip();
    if (t_.substr(i_, s.size()) == s) {
      i_ += s.size();
      return true;
    }
    return false;
  }

  int sum() {
    int a = product();
    for (;;) {
      if (take("+")) a = g_.binary(Op::add, a, product());
      else if (take("-")) a = g_.binary(Op::sub, a, product());
      else return a;
    }
  }

  int product() {
    int a = signed_factor();
    for (;;) {
      skip();
      if (t_.substr(i_, 2) == "**") return a;  // handled by power()
      if (take("*")) a = g_.binary(Op::mul, a, signed_factor());
      else if (take("/")) a = g_.binary(Op::div, a, signed_factor());
      else return a;
    }
  }

  int signed_factor() {
    if (take("-")) return g_.unary(Op::neg, signed_factor());
    if (take("+")) return signed_factor();
    return power();
  }

  int power() {
    const int base = primary();
    if (take("^") || take("**")) return g_.binary(Op::pow, base, signed_factor());
    return base;
  }

  int primary() {
    skip();
    if (at_end()) throw ParseError("expression ends where a value is expected", pos());
    const char ch = t_[i_];
    if (ch == '(') {
      const int open = pos();
      ++i_;
      const int e = sum();
      if (!take(")")) throw ParseError("unbalanced '(' opened", open);
      return e;
    }
    if (std::isdigit(static_cast<unsigned char>(ch)) || ch == '.') return number();
    if (std::isalpha(static_cast<unsigned char>(ch)) || ch == '_') return name();
    throw ParseError("unexpected '" + std::string(1, ch) + "'", pos());
  }

  int number() {
    const int at = pos();
    double v = 0;
    const auto r = std::from_chars(t_.data() + i_, t_.data() + t_.size(), v);
    if (r.ec != std::errc()) throw ParseError("bad number", at);
    i_ = std::size_t(r.ptr - t_.data());
    return g_.constant(v);
  }

  int name() {
    const int at = pos();
    const std::size_t start = i_;
    while (!at_end() && (std::isalnum(static_cast<unsigned char>(t_[i_])) || t_[i_] == '_')) ++i_;
    const std::string_view id = t_.substr(start, i_ - start);
    skip();
    if (at_end() || t_[i_] != '(') return resolve_(g_, id, at);
    static const std::map<std::string_view, Op, std::less<>> unary = {
        {"exp", Op::exp}, {"log", Op::log}, {"sqrt", Op::sqrt}, {"abs", Op::abs},
        {"sin", Op::sin}, {"cos", Op::cos}, {"tan", Op::tan},   {"atan", Op::atan},
        {"tanh", Op::tanh}, {"erf", Op::erf}, {"sign", Op::sign}, {"step", Op::step}, {"floor", Op::floor}};
    static const std::map<std::string_view, Op, std::less<>> binary = {
        {"pow", Op::pow}, {"min", Op::min}, {"max", Op::max}};
    const int open = pos();
    ++i_;  // '('
    std::vector<int> args{sum()};
    while (take(",")) args.push_back(sum());
    if (!take(")")) throw ParseError("unbalanced '(' opened", open);
    if (const auto u = unary.find(id); u != unary.end()) {
      if (args.size() != 1) throw ParseError(std::string(id) + " takes 1 argument", at);
      return g_.unary(u->second, args[0]);
    }
    if (const auto b = binary.find(id); b != binary.end()) {
      if (args.size() != 2) throw ParseError(std::string(id) + " takes 2 arguments", at);
      return g_.binary(b->second, args[0], args[1]);
    }
    throw ParseError("unknown function '" + std::string(id) + "'", at);
  }

  Graph& g_;
  std::string_view t_;
  const Resolver& resolve_;
  std::size_t i_ = 0;
};

}  // namespace

int parse(Graph& graph, std::string_view text, const Resolver& resolve) {
  return Parser(graph, text, resolve).parse();
}

}  // namespace tessera::fit::expr
