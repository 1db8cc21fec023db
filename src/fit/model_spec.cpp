#include "model_spec.hpp"

#include <stdexcept>

#include "model_dispatch.hpp"
#include "user_model.hpp"

namespace tessera::fit {

int ModelSpec::n_params() const {
  switch (kind) {
    case ModelKind::lorentzian:
    case ModelKind::gaussian: return layout().n_params();
    case ModelKind::stretched_exp: return core::StretchedExp::n_params;
    case ModelKind::damped_cosine: return core::DampedCosine::n_params;
    case ModelKind::expression: return user ? user->model().n_params() : 0;
  }
  return 0;
}

std::string ModelSpec::model_name() const {
  switch (kind) {
    case ModelKind::lorentzian: return "lorentzian";
    case ModelKind::gaussian: return "gaussian";
    case ModelKind::stretched_exp: return "stretched_exp";
    case ModelKind::damped_cosine: return "damped_cosine";
    case ModelKind::expression: return "expression";
  }
  return "?";
}

std::vector<std::string> ModelSpec::param_names() const {
  switch (kind) {
    case ModelKind::stretched_exp: return {"offset", "amp", "t1", "beta"};
    case ModelKind::damped_cosine: return {"offset", "amp", "tau", "freq", "phase"};
    case ModelKind::expression: return user->model().param_names();
    default: break;
  }
  std::vector<std::string> names{"offset"};
  if (linear_background) names.push_back("slope");
  for (int k = 0; k < n_peaks; ++k)
    for (const char* base : {"pos", "fwhm", "amp"}) names.push_back(base + std::to_string(k));
  return names;
}

std::vector<std::string> ModelSpec::param_units(const std::string& xu, const std::string& yu) const {
  switch (kind) {
    case ModelKind::stretched_exp: return {yu, yu, xu, "1"};
    case ModelKind::damped_cosine: return {yu, yu, xu, "1/" + xu, "rad"};
    case ModelKind::expression: return user->units(xu, yu);
    default: break;
  }
  std::vector<std::string> units{yu};
  if (linear_background) units.push_back(yu + "/" + xu);
  for (int k = 0; k < n_peaks; ++k)
    for (const std::string& u : {xu, xu, yu}) units.push_back(u);
  return units;
}

ModelSpec make_model_spec(const std::string& name, int n_peaks, const std::string& background,
                          std::span<const float> sweep) {
  ModelSpec s;
  if (name == "lorentzian") s.kind = ModelKind::lorentzian;
  else if (name == "gaussian") s.kind = ModelKind::gaussian;
  else if (name == "stretched_exp") s.kind = ModelKind::stretched_exp;
  else if (name == "damped_cosine") s.kind = ModelKind::damped_cosine;
  else
    throw std::invalid_argument("unknown model '" + name +
                                "' (choose lorentzian, gaussian, stretched_exp, damped_cosine)");
  if (s.is_peak_model()) {
    if (n_peaks < 1 || n_peaks > max_peaks)
      throw std::invalid_argument("--peaks must be between 1 and " + std::to_string(max_peaks) +
                                  ", got " + std::to_string(n_peaks));
    s.n_peaks = n_peaks;
    if (background == "linear") s.linear_background = true;
    else if (background != "constant")
      throw std::invalid_argument("unknown background '" + background + "' (constant or linear)");
    if (!sweep.empty()) s.x_mid = 0.5 * (double(sweep.front()) + double(sweep.back()));
  }
  return s;
}

ModelSpec expression_spec(std::shared_ptr<const CompiledModel> model) {
  ModelSpec s;
  s.kind = ModelKind::expression;
  s.user = std::move(model);
  return s;
}

std::vector<double> model_values(const ModelSpec& spec, std::span<const double> params,
                                 std::span<const double> x) {
  if (int(params.size()) != spec.n_params())
    throw std::invalid_argument("model_values: wrong number of parameters");
  if (spec.kind == ModelKind::expression) {
    std::vector<double> out(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) out[i] = spec.user->model().value(x[i], params);
    return out;
  }
  return visit_model(spec, [&](const auto& model) {
    constexpr int P = std::remove_cvref_t<decltype(model)>::n_params;
    std::vector<double> out(x.size());
    double J[P];
    for (size_t i = 0; i < x.size(); ++i) core::eval_full(model, x[i], params.data(), out[i], J);
    return out;
  });
}

}  // namespace tessera::fit
