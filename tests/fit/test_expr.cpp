// The expression language of models of the user's own (src/fit/expr.hpp):
// parsing and printing round trips, simplification and shared subexpressions,
// symbolic derivatives against central finite differences, the built-in models
// written as expressions against the built-in models' values, and syntax errors
// with their positions.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "fit/expr.hpp"
#include "fit/model_spec.hpp"

namespace ex = tessera::fit::expr;
namespace fit = tessera::fit;

namespace {

// A model text over named parameters and constants.
struct Model {
  ex::Graph g;
  std::vector<std::string> params;
  std::vector<std::pair<std::string, double>> consts;
  int root = -1;

  Model(const std::string& text, std::vector<std::string> names,
        std::vector<std::pair<std::string, double>> constants = {})
      : params(std::move(names)), consts(std::move(constants)) {
    root = parse(text);
  }
  int parse(const std::string& text) {
    return ex::parse(g, text, [this](ex::Graph& g, std::string_view name, int pos) {
      if (name == "x") return g.x();
      for (std::size_t j = 0; j < params.size(); ++j)
        if (params[j] == name) return g.param(int(j));
      for (const auto& [n, v] : consts)
        if (n == name) return g.constant(v);
      throw ex::ParseError("unknown name '" + std::string(name) + "'", pos);
    });
  }
};

std::string parse_error(const std::string& text) {
  try {
    Model m(text, {"a", "b"});
  } catch (const ex::ParseError& e) {
    return e.what();
  }
  return "";
}

TEST(Expr, SyntaxErrorsNameTheProblemAndItsPosition) {
  EXPECT_EQ(parse_error(""), "expression: empty expression at position 1");
  EXPECT_EQ(parse_error("   "), "expression: empty expression at position 1");
  EXPECT_EQ(parse_error("(x + 1"), "expression: unbalanced '(' opened at position 1");
  EXPECT_EQ(parse_error("x + 1)"), "expression: unbalanced ')' at position 6");
  EXPECT_EQ(parse_error("exp(x"), "expression: unbalanced '(' opened at position 4");
  EXPECT_EQ(parse_error("a * foo(x)"), "expression: unknown function 'foo' at position 5");
  EXPECT_EQ(parse_error("a + c"), "expression: unknown name 'c' at position 5");
  EXPECT_EQ(parse_error("x +"), "expression: expression ends where a value is expected at position 4");
  EXPECT_EQ(parse_error("x $ 2"), "expression: unexpected '$' at position 3");
  EXPECT_EQ(parse_error("exp(x, 2)"), "expression: exp takes 1 argument at position 1");
  EXPECT_EQ(parse_error("pow(x)"), "expression: pow takes 2 arguments at position 1");
  EXPECT_EQ(parse_error("2x"), "expression: unexpected 'x' at position 2");
}

TEST(Expr, PrecedenceAndAssociativity) {
  Model m("0", {"a", "b", "c"});
  auto value = [&](const std::string& t, double x = 0.5) {
    const int id = m.parse(t);
    return m.g.eval(id, x, std::vector<double>{2, 3, 5});
  };
  EXPECT_EQ(value("-a^2"), -4);             // -(a^2)
  EXPECT_EQ(value("a^b^2"), std::pow(2, 9));  // a^(b^2)
  EXPECT_EQ(value("a**b**2"), std::pow(2, 9));
  EXPECT_EQ(value("a - b - c"), -6);
  EXPECT_EQ(value("a / b / c"), 2.0 / 3.0 / 5.0);
  EXPECT_EQ(value("a * -b"), -6);
  EXPECT_EQ(value("a^-1"), 0.5);
  EXPECT_EQ(value("2 + 3 * a ^ 2"), 14);
  EXPECT_EQ(value("1e-3 * 2.5e2 + .5"), 0.75);
  EXPECT_EQ(value("min(a, b) + max(a, c)"), 7);
  EXPECT_EQ(value("pow(a, b)"), 8);
}

TEST(Expr, EqualSubexpressionsAreOneNodeAndTrivialOperationsFold) {
  Model m("0", {"a", "b"});
  const int n0 = m.g.size();
  const int s1 = m.parse("(x - a) / b");
  const int after_first = m.g.size();
  const int s2 = m.parse("(x-a)/b");
  EXPECT_EQ(s1, s2);
  EXPECT_EQ(m.g.size(), after_first);  // nothing new
  EXPECT_GT(after_first, n0);
  EXPECT_EQ(m.parse("a * 1"), m.parse("a"));
  EXPECT_EQ(m.parse("0 * (x + a)"), m.g.constant(0));
  EXPECT_EQ(m.parse("x - x"), m.g.constant(0));
  EXPECT_EQ(m.parse("--a"), m.parse("a"));
  EXPECT_EQ(m.parse("2 * 3 + 1"), m.g.constant(7));
  EXPECT_EQ(m.parse("a + -b"), m.parse("a - b"));
  EXPECT_EQ(m.parse("a^1"), m.parse("a"));
}

// Expressions that cover every operation, and the built-in models.
const std::vector<std::string> corpus = {
    "a + b * x",
    "a - b / (1 + ((x - c) / (d / 2))^2)",
    "a + b * exp(-4 * log(2) * (x - c)^2 / d^2)",
    "a + b * exp(-(x / c)^d)",
    "a + b * exp(-x / c) * cos(2 * 3.141592653589793 * d * x + a)",
    "sqrt(a * a + x) * sin(b * x) - tan(c * x / 10)",
    "atan((x - a) / b) + tanh(c * x) * erf(d - x)",
    "pow(a, x / 3) + abs(b - x) + x^c",
    "min(a * x, b) + max(c, d * x) - log(a + b + x)",
    "a / (x + b)^3 - (c - x) / d / (a + 2)",
};

TEST(Expr, DerivativesEqualCentralDifferences) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<double> u(0.7, 1.9);
  for (const auto& text : corpus) {
    Model m(text, {"a", "b", "c", "d"});
    for (int trial = 0; trial < 20; ++trial) {
      std::vector<double> p{u(rng), u(rng), u(rng), u(rng)};
      const double x = u(rng) * 1.3;
      for (int j = 0; j < 4; ++j) {
        const int d = m.g.derivative(m.root, j);
        const double analytic = m.g.eval(d, x, p);
        const double h = 1e-6 * std::max(1.0, std::fabs(p[std::size_t(j)]));
        auto q = p;
        q[std::size_t(j)] += h;
        const double f1 = m.g.eval(m.root, x, q);
        q[std::size_t(j)] -= 2 * h;
        const double f0 = m.g.eval(m.root, x, q);
        const double numeric = (f1 - f0) / (2 * h);
        EXPECT_NEAR(analytic, numeric, 1e-6 * std::max(1.0, std::fabs(numeric)))
            << text << ", d/d" << m.params[std::size_t(j)] << " at x = " << x;
      }
    }
  }
}

TEST(Expr, PrintingParsesBackToTheSameNode) {
  std::vector<std::string> texts = corpus;
  texts.insert(texts.end(), {"a - (b - c)", "(a^b)^c", "a^b^c", "-(a + b) * c", "a / (b * c)", "a^-b",
                             "(-a)^2", "x * (-1.5) + 1e-300", "a / (-b)", "2^0.5 - 1 / 3"});
  for (const auto& text : texts) {
    Model m(text, {"a", "b", "c", "d"});
    const std::string printed = m.g.print(m.root, m.params);
    EXPECT_EQ(m.parse(printed), m.root) << text << " printed as " << printed;
    // And derivatives print and parse back too.
    const int d = m.g.derivative(m.root, 0);
    EXPECT_EQ(m.parse(m.g.print(d, m.params)), d) << "d/da of " << text;
  }
}

TEST(Expr, BuiltInModelsWrittenAsExpressionsHaveTheirValues) {
  const std::vector<float> sweep{2800, 2950};
  struct Case {
    const char* model;
    int peaks;
    std::string text;
    std::vector<std::string> names;
    std::vector<double> p;
    double x0, x1;
  };
  const std::vector<Case> cases = {
      {"lorentzian", 2,
       "offset + amp0 / (1 + ((x - pos0) / (fwhm0 / 2))^2) + amp1 / (1 + ((x - pos1) / (fwhm1 / 2))^2)",
       {"offset", "pos0", "fwhm0", "amp0", "pos1", "fwhm1", "amp1"},
       {1, 2860, 9, -0.01, 2880, 11, -0.012}, 2800, 2950},
      {"gaussian", 1, "offset + amp0 * exp(-4 * log(2) * (x - pos0)^2 / fwhm0^2)",
       {"offset", "pos0", "fwhm0", "amp0"}, {1, 2870, 9, -0.01}, 2800, 2950},
      {"stretched_exp", 0, "offset + amp * exp(-(x / t1)^beta)", {"offset", "amp", "t1", "beta"},
       {0.2, 0.8, 300, 0.8}, 1, 3000},
      {"damped_cosine", 0, "offset + amp * exp(-x / tau) * cos(2 * 3.141592653589793 * freq * x + phase)",
       {"offset", "amp", "tau", "freq", "phase"}, {0.5, 0.3, 2, 1.7, 0.4}, 0, 5},
  };
  for (const auto& c : cases) {
    const fit::ModelSpec spec = fit::make_model_spec(c.model, std::max(c.peaks, 1), "constant", sweep);
    ASSERT_EQ(spec.param_names(), c.names) << c.model;
    Model m(c.text, c.names);
    std::vector<double> xs;
    for (int i = 0; i <= 40; ++i) xs.push_back(c.x0 + (c.x1 - c.x0) * i / 40);
    const auto want = fit::model_values(spec, c.p, xs);
    for (std::size_t i = 0; i < xs.size(); ++i)
      EXPECT_NEAR(m.g.eval(m.root, xs[i], c.p), want[i], 1e-12 * std::max(1.0, std::fabs(want[i])))
          << c.model << " at x = " << xs[i];
  }
}

TEST(Expr, DerivativesOfPowersSurviveTheGraphGrowing) {
  // Each derivative adds nodes while it reads the one it differentiates; many
  // powers in one growing graph make the storage move under it.
  Model m("0", {"a"});
  for (int k = 2; k < 300; ++k) {
    const double p = k + 0.25;  // p - 1 is a constant the graph does not hold yet
    // A base whose own derivative adds nodes of its own (sin(k a x) is new each time).
    const std::string kk = std::to_string(k);
    const int e = m.parse("(x * a + 2 + sin(" + kk + " * a * x))^" + std::to_string(p));
    const int d = m.g.derivative(e, 0);
    const double x = 0.001 * k, a = 0.9, base = x * a + 2 + std::sin(k * a * x);
    const double want = p * std::pow(base, p - 1) * (x + k * x * std::cos(k * a * x));
    EXPECT_NEAR(m.g.eval(d, x, std::vector<double>{a}), want, 1e-12 * std::fabs(want)) << "exponent " << p;
  }
}

TEST(Expr, DependenceOnParametersAndX) {
  Model m("a + b * 0 + exp(c * x)", {"a", "b", "c"});
  EXPECT_TRUE(m.g.depends_on_param(m.root, 0));
  EXPECT_FALSE(m.g.depends_on_param(m.root, 1));  // b * 0 folded away
  EXPECT_TRUE(m.g.depends_on_param(m.root, 2));
  EXPECT_TRUE(m.g.depends_on_x(m.root));
  Model k("a * b", {"a", "b"});
  EXPECT_FALSE(k.g.depends_on_x(k.root));
}

}  // namespace

// floor (for models over a grid index, as Gpufit's GAUSS_2D on the point
// index): its value, a derivative of zero, printing that parses back.
TEST(Expr, FloorOfAGridIndex) {
  Model m("a * floor(x / 4) + b * (x - 4 * floor(x / 4))", {"a", "b"});
  const std::vector<double> p{10.0, 1.0};
  EXPECT_EQ(m.g.eval(m.root, 0.0, p), 0.0);
  EXPECT_EQ(m.g.eval(m.root, 5.0, p), 11.0);   // row 1, column 1
  EXPECT_EQ(m.g.eval(m.root, 11.0, p), 23.0);  // row 2, column 3
  EXPECT_EQ(m.g.eval(m.root, -0.5, p), -10.0 + 3.5);
  const int da = m.g.derivative(m.root, 0);
  EXPECT_EQ(m.g.eval(da, 7.0, p), 1.0);
  const int dx_free = m.g.derivative(m.parse("floor(a * x)"), 0);
  EXPECT_EQ(m.g.eval(dx_free, 2.5, p), 0.0);
  EXPECT_EQ(m.parse(m.g.print(m.root, m.params)), m.root);
}
