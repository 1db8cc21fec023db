#include "model_file.hpp"

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <stdexcept>

namespace fs = std::filesystem;

namespace tessera::fit {

namespace {

std::string trim(const std::string& s) {
  const auto a = s.find_first_not_of(" \t\r");
  if (a == std::string::npos) return {};
  return s.substr(a, s.find_last_not_of(" \t\r") - a + 1);
}

double number(const std::string& s, const std::string& where) {
  std::size_t used = 0;
  double v = 0;
  try {
    v = std::stod(s, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != s.size()) throw std::invalid_argument(where + "'" + s + "' is not a number");
  return v;
}

// NAME = TEXT, with NAME possibly followed by [UNIT].
struct Assignment {
  std::string name, unit, text;
};
Assignment assignment(const std::string& rest, const std::string& where) {
  const auto eq = rest.find('=');
  if (eq == std::string::npos) throw std::invalid_argument(where + "expected NAME = ...");
  Assignment a{trim(rest.substr(0, eq)), "", trim(rest.substr(eq + 1))};
  if (const auto open = a.name.find('['); open != std::string::npos) {
    if (a.name.back() != ']') throw std::invalid_argument(where + "expected NAME[UNIT] = ...");
    a.unit = a.name.substr(open + 1, a.name.size() - open - 2);
    a.name = trim(a.name.substr(0, open));
  }
  if (a.name.empty() || a.text.empty()) throw std::invalid_argument(where + "expected NAME = ...");
  return a;
}

void parse_param(const std::string& rest, const std::string& where, UserModelDescription& d) {
  std::istringstream in(rest);
  std::string name;
  in >> name;
  if (name.empty()) throw std::invalid_argument(where + "param needs a name");
  StartRule start{StartRule::Kind::value, std::numeric_limits<double>::quiet_NaN()};
  std::string unit;
  std::pair<double, double> bound{-INFINITY, INFINITY};
  for (std::string item; in >> item;) {
    const auto eq = item.find('=');
    const std::string key = item.substr(0, eq), value = eq == std::string::npos ? "" : item.substr(eq + 1);
    if (key == "start" && value == "baseline") start = {StartRule::Kind::baseline, 0};
    else if (key == "start" && value == "depth") start = {StartRule::Kind::depth, 1};
    else if (key == "start" && value.rfind("depth/", 0) == 0) {
      start = {StartRule::Kind::depth, number(value.substr(6), where)};
      if (!(start.value > 0)) throw std::invalid_argument(where + "depth/N needs N > 0");
    } else if (key == "start") start = {StartRule::Kind::value, number(value, where)};
    else if (key == "unit") unit = value;
    else if (key == "bound") {
      const auto colon = value.find(':');
      if (colon == std::string::npos) throw std::invalid_argument(where + "bound=LO:HI expected, got '" + item + "'");
      bound = {number(value.substr(0, colon), where), number(value.substr(colon + 1), where)};
    } else {
      throw std::invalid_argument(where + "unknown param item '" + item + "' (start=, unit=, bound=)");
    }
  }
  d.source.params.push_back(name);
  d.start.push_back(start);
  d.units.push_back(unit);
  d.bounds.push_back(bound);
}

}  // namespace

UserModelDescription parse_model_file(const std::string& text, const std::string& path) {
  UserModelDescription d;
  d.origin = path;
  d.name = fs::path(path).stem().string();
  std::istringstream in(text);
  int line_no = 0;
  bool has_value = false;
  for (std::string raw; std::getline(in, raw);) {
    ++line_no;
    const std::string where = path + ":" + std::to_string(line_no) + ": ";
    const std::string line = trim(raw.substr(0, raw.find('#')));
    if (line.empty()) continue;
    const auto space = line.find_first_of(" \t=");
    const std::string word = line.substr(0, space), rest = space == std::string::npos ? "" : line.substr(space);
    try {
      if (word == "param") {
        parse_param(rest, where, d);
      } else if (word == "const") {
        const Assignment a = assignment(rest, where);
        d.source.consts.emplace_back(a.name, number(a.text, where));
      } else if (word == "let") {
        const Assignment a = assignment(rest, where);
        d.source.lets.emplace_back(a.name, a.text);
      } else if (word == "derive") {
        const Assignment a = assignment(rest, where);
        d.source.derives.emplace_back(a.name, a.text);
        d.derive_units.push_back(a.unit);
      } else if (word == "value") {
        if (has_value) throw std::invalid_argument(where + "a second value line");
        const std::string r = trim(rest);
        if (r.empty() || r[0] != '=' || trim(r.substr(1)).empty())
          throw std::invalid_argument(where + "expected value = EXPRESSION");
        d.source.expr = trim(r.substr(1));
        has_value = true;
      } else {
        throw std::invalid_argument(where + "unknown line '" + word + "' (param, const, let, value, derive)");
      }
    } catch (const std::invalid_argument& e) {
      const std::string m = e.what();
      throw std::invalid_argument(m.rfind(path, 0) == 0 ? m : where + m);
    }
  }
  if (!has_value) throw std::invalid_argument(path + ": no value line (value = EXPRESSION)");
  if (d.source.params.empty()) throw std::invalid_argument(path + ": no param line");
  return d;
}

UserModelDescription load_model_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::invalid_argument(path + ": cannot read the model file");
  std::ostringstream s;
  s << in.rdbuf();
  return parse_model_file(s.str(), path);
}

namespace {

std::vector<fs::path> model_dirs() {
  std::vector<fs::path> dirs;
  if (const char* env = std::getenv("TESSERA_MODELS"); env && *env) {
    std::string all = env;
    for (std::size_t at = 0; at <= all.size();) {
      const std::size_t colon = std::min(all.find(':', at), all.size());
      if (colon > at) dirs.emplace_back(all.substr(at, colon - at));
      at = colon + 1;
    }
  }
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    dirs.push_back(exe.parent_path() / "models");
    dirs.push_back(exe.parent_path() / ".." / "share" / "tessera" / "models");
  }
  dirs.emplace_back(TESSERA_SOURCE_MODELS);
  return dirs;
}

}  // namespace

std::string find_model(const std::string& name) {
  if (name.empty() || name.find('/') != std::string::npos) return {};
  for (const auto& dir : model_dirs()) {
    const fs::path p = dir / (name + ".model");
    std::error_code ec;
    if (fs::is_regular_file(p, ec)) return p.string();
  }
  return {};
}

std::vector<std::string> shipped_models() {
  std::set<std::string> names;
  for (const auto& dir : model_dirs()) {
    std::error_code ec;
    for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec))
      if (it->path().extension() == ".model") names.insert(it->path().stem().string());
  }
  return {names.begin(), names.end()};
}

}  // namespace tessera::fit
