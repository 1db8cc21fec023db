#include "decomposition.hpp"

#include <algorithm>
#include <cctype>
#include <limits>
#include <stdexcept>

namespace tessera::mpi {

namespace {

[[noreturn]] void bad(const std::string& what) { throw std::invalid_argument(what); }

}  // namespace

Range split_rows(std::int64_t n, int size, int part) {
  if (n < 0) bad("split_rows: negative row count " + std::to_string(n));
  if (size < 1) bad("split_rows: part count " + std::to_string(size) + " < 1");
  if (part < 0 || part >= size)
    bad("split_rows: part " + std::to_string(part) + " outside [0, " + std::to_string(size) + ")");
  const std::int64_t base = n / size;
  const std::int64_t extra = n % size;  // the first `extra` parts get base + 1
  const std::int64_t p = part;
  const std::int64_t begin = p * base + std::min(p, extra);
  const std::int64_t count = base + (p < extra ? 1 : 0);
  return {begin, begin + count};
}

std::vector<Range> split_all(std::int64_t n, int size) {
  std::vector<Range> parts;
  parts.reserve(size > 0 ? static_cast<std::size_t>(size) : 0);
  for (int p = 0; p < size; ++p) parts.push_back(split_rows(n, size, p));
  if (size < 1) (void)split_rows(n, size, 0);  // throws the usual message
  return parts;
}

std::int64_t max_share(std::int64_t n, int size) {
  return split_rows(n, size, 0).size();  // part 0 always holds the most
}

std::int64_t rows_per_chunk(std::uint64_t budget_bytes, std::uint64_t bytes_per_row) {
  if (bytes_per_row == 0) bad("rows_per_chunk: zero bytes per row");
  const std::uint64_t rows = budget_bytes / bytes_per_row;
  constexpr auto cap = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  return static_cast<std::int64_t>(std::clamp<std::uint64_t>(rows, 1, cap));
}

std::int64_t chunk_count(std::int64_t rows, std::int64_t per_chunk) {
  if (rows < 0) bad("chunk_count: negative row count " + std::to_string(rows));
  if (per_chunk < 1) bad("chunk_count: rows per chunk " + std::to_string(per_chunk) + " < 1");
  return rows / per_chunk + (rows % per_chunk != 0 ? 1 : 0);
}

ChunkPlan plan_chunks(std::int64_t n, int size, std::uint64_t budget_bytes,
                      std::uint64_t bytes_per_row) {
  ChunkPlan plan;
  plan.rows_per_chunk = rows_per_chunk(budget_bytes, bytes_per_row);
  plan.n_chunks = chunk_count(max_share(n, size), plan.rows_per_chunk);
  return plan;
}

Range chunk_range(Range rows, std::int64_t n_chunks, std::int64_t index) {
  if (rows.begin < 0 || rows.end < rows.begin)
    bad("chunk_range: bad row range [" + std::to_string(rows.begin) + ", " +
        std::to_string(rows.end) + ")");
  if (n_chunks < 1) bad("chunk_range: chunk count " + std::to_string(n_chunks) + " < 1");
  if (index < 0 || index >= n_chunks)
    bad("chunk_range: chunk " + std::to_string(index) + " outside [0, " +
        std::to_string(n_chunks) + ")");
  // split_rows with 64-bit part counts: the same formula, inlined.
  const std::int64_t n = rows.size();
  const std::int64_t base = n / n_chunks;
  const std::int64_t extra = n % n_chunks;
  const std::int64_t begin = rows.begin + index * base + std::min(index, extra);
  return {begin, begin + base + (index < extra ? 1 : 0)};
}

std::uint64_t parse_size(std::string_view text) {
  std::string quoted(1, '\'');
  quoted.append(text).push_back('\'');
  auto fail = [&](const std::string& why) -> void {
    bad("bad size " + quoted + ": " + why + " (examples: 512M, 4G, 1.5GiB, 2000000000)");
  };
  std::size_t i = 0;
  auto skip_space = [&] {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  };
  skip_space();
  if (i < text.size() && text[i] == '-') fail("negative");
  // Integer part, exactly.
  unsigned __int128 whole = 0;
  std::size_t digits = 0;
  for (; i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])); ++i, ++digits) {
    whole = whole * 10 + static_cast<unsigned>(text[i] - '0');
    if (whole > std::numeric_limits<std::uint64_t>::max()) fail("too large");
  }
  // Fraction: up to 18 digits kept (the rest only lowers the value further below a byte).
  std::uint64_t frac = 0, frac_scale = 1;
  if (i < text.size() && text[i] == '.') {
    ++i;
    for (; i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])); ++i, ++digits) {
      if (frac_scale < 1000000000000000000ULL) {
        frac = frac * 10 + static_cast<unsigned>(text[i] - '0');
        frac_scale *= 10;
      }
    }
  }
  if (digits == 0) fail("not a number");
  skip_space();
  std::string unit;
  for (; i < text.size() && !std::isspace(static_cast<unsigned char>(text[i])); ++i)
    unit += static_cast<char>(std::tolower(static_cast<unsigned char>(text[i])));
  skip_space();
  if (i != text.size()) fail("unexpected text after the unit");

  std::uint64_t scale = 0;
  constexpr std::uint64_t Ki = 1024;
  if (unit.empty() || unit == "b") scale = 1;
  else if (unit == "k" || unit == "kib") scale = Ki;
  else if (unit == "m" || unit == "mib") scale = Ki * Ki;
  else if (unit == "g" || unit == "gib") scale = Ki * Ki * Ki;
  else if (unit == "t" || unit == "tib") scale = Ki * Ki * Ki * Ki;
  else if (unit == "kb") scale = 1000ULL;
  else if (unit == "mb") scale = 1000ULL * 1000;
  else if (unit == "gb") scale = 1000ULL * 1000 * 1000;
  else if (unit == "tb") scale = 1000ULL * 1000 * 1000 * 1000;
  else fail("unknown unit '" + unit + "'");

  const unsigned __int128 bytes =
      whole * scale + static_cast<unsigned __int128>(frac) * scale / frac_scale;
  if (bytes > std::numeric_limits<std::uint64_t>::max()) fail("too large");
  if (bytes == 0) fail("must be at least one byte");
  return static_cast<std::uint64_t>(bytes);
}

std::string format_size(std::uint64_t bytes, bool round_up) {
  static constexpr const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int u = 0;
  unsigned __int128 scale = 1;
  while (u < 6 && bytes >= scale * 1024) {
    scale *= 1024;
    ++u;
  }
  // Tenths, rounded half up, or up.
  const auto tenths = static_cast<std::uint64_t>((bytes * static_cast<unsigned __int128>(10) +
                                                  (round_up ? scale - 1 : scale / 2)) / scale);
  std::string s = std::to_string(tenths / 10);
  if (tenths % 10 != 0) {
    s += '.';
    s += std::to_string(tenths % 10);
  }
  s += ' ';
  return s + units[u];
}

}  // namespace tessera::mpi
