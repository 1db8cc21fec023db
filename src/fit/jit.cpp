#include "jit.hpp"

#include <dlfcn.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace fs = std::filesystem;

extern char** environ;

namespace tessera::fit::jit {

namespace {

std::uint64_t fnv1a(const std::string& s, std::uint64_t h = 1469598103934665603ULL) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Every header the generated source can reach, so that a cached object built
// against other engine headers is never reused.
std::uint64_t headers_digest(const std::string& include_dir) {
  std::vector<fs::path> files;
  for (const char* sub : {"core", "fit"}) {
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(fs::path(include_dir) / sub, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
      if (it->is_regular_file() && it->path().extension() == ".hpp") files.push_back(it->path());
  }
  std::sort(files.begin(), files.end());
  std::uint64_t h = fnv1a("headers");
  for (const auto& f : files) h = fnv1a(f.filename().string() + read_file(f), h);
  return h;
}

// With -march=native the object is built for this CPU: the CPU's features are
// part of the key, so a cache shared by nodes of other CPUs never hands one an
// object with instructions it lacks.
std::string cpu_features(const std::string& flags) {
  if (flags.find("-march=native") == std::string::npos) return {};
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("flags", 0) == 0) return line;
  return "unknown cpu";
}

std::vector<std::string> words(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

// Runs argv with stdout and stderr into log_path; returns the exit status
// (-1 when it could not start).
int run(const std::vector<std::string>& argv, const std::string& log_path) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return -1;
  int status = 0;
  if (waitpid(pid, &status, 0) < 0) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// The compiler's first line that says "error", else its first line.
std::string first_error(const std::string& log) {
  std::istringstream in(log);
  std::string first, line;
  while (std::getline(in, line)) {
    if (first.empty() && !line.empty()) first = line;
    if (line.find("error") != std::string::npos) return line;
  }
  return first.empty() ? "no output" : first;
}

// Writes text to path through a temporary file in the same directory.
void write_atomically(const fs::path& path, const std::string& text) {
  const fs::path tmp = path.string() + ".tmp." + std::to_string(getpid());
  {
    std::ofstream out(tmp, std::ios::binary);
    out << text;
    if (!out) throw std::runtime_error("cannot write " + tmp.string());
  }
  fs::rename(tmp, path);
}

}  // namespace

Toolchain toolchain() {
  Toolchain t{TESSERA_JIT_CXX, TESSERA_JIT_FLAGS, TESSERA_JIT_INCLUDE};
  if (const char* cxx = std::getenv("TESSERA_CXX"); cxx && *cxx) t.compiler = cxx;
  // An installed package (pip) carries the headers itself: see src/python.
  if (const char* inc = std::getenv("TESSERA_INCLUDE"); inc && *inc) t.include_dir = inc;
  return t;
}

std::string cache_dir() {
  fs::path dir;
  if (const char* c = std::getenv("TESSERA_CACHE"); c && *c) dir = c;
  else if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) dir = fs::path(x) / "tessera";
  else if (const char* h = std::getenv("HOME"); h && *h) dir = fs::path(h) / ".cache" / "tessera";
  else dir = fs::temp_directory_path() / "tessera-cache";
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (!fs::is_directory(dir)) throw std::runtime_error("cannot create the model cache " + dir.string());
  return dir.string();
}

std::string build(const std::string& source, bool* compiled) {
  if (compiled) *compiled = false;
  const Toolchain t = toolchain();
  char key[17];
  std::snprintf(key, sizeof key, "%016llx",
                (unsigned long long)fnv1a(source + "\n" + t.compiler + "\n" + t.flags + "\n" + cpu_features(t.flags),
                                          headers_digest(t.include_dir)));
  const fs::path dir = cache_dir();
  const fs::path so = dir / (std::string("model_") + key + ".so"), cpp = dir / (std::string("model_") + key + ".cpp");
  if (fs::exists(so)) return so.string();

  write_atomically(cpp, source);
  const std::string tmp_so = so.string() + ".tmp." + std::to_string(getpid());
  const std::string log = so.string() + ".log." + std::to_string(getpid());
  std::vector<std::string> argv{t.compiler};
  for (auto& w : words(t.flags)) argv.push_back(w);
  for (const char* w : {"-shared", "-fPIC"}) argv.emplace_back(w);
  argv.push_back("-I" + t.include_dir);
  argv.insert(argv.end(), {"-o", tmp_so, cpp.string()});
  const int rc = run(argv, log);
  const std::string out = read_file(log);
  std::error_code ec;
  fs::remove(log, ec);
  if (rc != 0) {
    fs::remove(tmp_so, ec);
    if (rc == -1 || out.find("not found") != std::string::npos)
      throw std::invalid_argument("no C++ compiler to build the model (" + t.compiler +
                                  "): install one (Debian: g++) or set TESSERA_CXX");
    throw std::invalid_argument("the model did not compile: " + first_error(out) + " (source: " + cpp.string() + ")");
  }
  fs::rename(tmp_so, so);
  if (compiled) *compiled = true;
  return so.string();
}

Library::Library(const std::string& path) : path_(path) {
  handle_ = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle_) throw std::runtime_error("cannot load " + path + ": " + dlerror());
}

Library::~Library() {
  if (handle_) dlclose(handle_);
}

void* Library::symbol(const char* name) const {
  void* s = dlsym(handle_, name);
  if (!s) throw std::runtime_error(path_ + ": no symbol " + name);
  return s;
}

}  // namespace tessera::fit::jit
