#include "part.hpp"

#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "command.hpp"

namespace tessera::cli {

namespace {

// A whole decimal number (digits only) in [lo, hi], or throws UsageError naming `what`.
long long integer(const std::string& s, long long lo, long long hi, const std::string& what) {
  if (s.empty() || s.size() > 12 || s.find_first_not_of("0123456789") != std::string::npos)
    throw UsageError(what);
  const long long v = std::stoll(s);
  if (v < lo || v > hi) throw UsageError(what);
  return v;
}

}  // namespace

Part parse_part(const std::string& text, const EnvLookup& env_in) {
  if (text.empty()) return {};
  const EnvLookup env = env_in ? env_in : EnvLookup([](const char* n) { return std::getenv(n); });
  constexpr long long max_parts = 1000000;
  if (text == "auto") {
    auto get = [&](const char* name) -> std::string {
      const char* v = env(name);
      if (v == nullptr)
        throw UsageError(std::string("--part auto: ") + name +
                         " is not set (not a SLURM array task); give --part I/N");
      return v;
    };
    const std::string id = get("SLURM_ARRAY_TASK_ID"), count = get("SLURM_ARRAY_TASK_COUNT");
    const std::string min = get("SLURM_ARRAY_TASK_MIN"), max = get("SLURM_ARRAY_TASK_MAX");
    const std::string bad = "--part auto: the SLURM array is tasks " + min + "-" + max + " (" +
                            count + " tasks), not --array=1-N; give --part I/N";
    const long long n = integer(count, 1, max_parts, bad);
    if (integer(min, 0, max_parts, bad) != 1 || integer(max, 0, max_parts, bad) != n)
      throw UsageError(bad);
    const long long i = integer(id, 1, n, bad);
    return {int(i), int(n)};
  }
  const auto slash = text.find('/');
  const std::string usage = "--part must be I/N with 1 <= I <= N, or auto, got '" + text + "'";
  if (slash == std::string::npos) throw UsageError(usage);
  const long long n = integer(text.substr(slash + 1), 1, max_parts, usage);
  const long long i = integer(text.substr(0, slash), 0, max_parts, usage);
  if (i == 0) throw UsageError("--part " + text + ": parts are numbered from 1 (1/" + std::to_string(n) +
                               " to " + std::to_string(n) + "/" + std::to_string(n) + ")");
  if (i > n) throw UsageError(usage);
  return {int(i), int(n)};
}

std::string part_name(const Part& p) { return std::to_string(p.index) + "/" + std::to_string(p.count); }

mpi::Range part_range(std::int64_t total, const Part& p) {
  return mpi::split_rows(total, p.count, p.index - 1);
}

std::string fingerprint_of(const std::string& text) {
  std::uint64_t h = 14695981039346656037ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::string first_difference(const std::string& a, const std::string& b) {
  std::istringstream sa(a), sb(b);
  std::string la, lb;
  while (true) {
    const bool ga = bool(std::getline(sa, la)), gb = bool(std::getline(sb, lb));
    if (!ga && !gb) return "";
    if (!ga) la = "(nothing)";
    if (!gb) lb = "(nothing)";
    if (!ga || !gb || la != lb) return la + " vs " + lb;
  }
}

std::string check_coverage(const std::vector<std::pair<std::string, PartStamp>>& parts) {
  if (parts.empty()) return "no part files given";
  const auto& [name0, s0] = parts.front();
  for (const auto& [name, s] : parts) {
    if (!s.complete) return name + ": not a complete output (no 'complete' attribute)";
    if (s.fingerprint_text != s0.fingerprint_text)
      return name + " and " + name0 + " come from different inputs or options (" +
             first_difference(s.fingerprint_text, s0.fingerprint_text) + ")";
    if (s.part.count != s0.part.count || s.total_rows != s0.total_rows)
      return name + " is part " + part_name(s.part) + " of " + std::to_string(s.total_rows) + " rows, " +
             name0 + " is part " + part_name(s0.part) + " of " + std::to_string(s0.total_rows) + " rows";
    if (s.datasets != s0.datasets || s.summed != s0.summed)
      return name + " and " + name0 + " hold different datasets";
    if (s.part.index < 1 || s.part.index > s.part.count || s.rows != part_range(s.total_rows, s.part))
      return name + ": rows " + std::to_string(s.rows.begin) + ":" + std::to_string(s.rows.end) +
             " are not those of part " + part_name(s.part) + " of " + std::to_string(s.total_rows) + " rows";
  }
  const int n = s0.part.count;
  std::vector<const std::string*> holder(std::size_t(n) + 1, nullptr);
  for (const auto& [name, s] : parts) {
    const std::string*& h = holder[std::size_t(s.part.index)];
    const auto r = s.rows;
    if (h != nullptr)
      return "part " + part_name(s.part) + " (rows " + std::to_string(r.begin) + ":" + std::to_string(r.end) +
             ") given twice: " + *h + " and " + name + " overlap";
    h = &name;
  }
  for (int i = 1; i <= n; ++i)
    if (holder[std::size_t(i)] == nullptr) {
      const auto r = part_range(s0.total_rows, {i, n});
      return "part " + part_name({i, n}) + " (rows " + std::to_string(r.begin) + ":" + std::to_string(r.end) +
             ") is missing: the parts given leave a gap";
    }
  return "";
}

}  // namespace tessera::cli
