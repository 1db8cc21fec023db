// The run-time compiler of models of the user's own: C++ source in, a loaded
// shared object out, cached on disk so that a model is compiled once.
//
// The compiler and flags are those tessera itself was built with (recorded at
// configure time; TESSERA_CXX overrides the compiler), against tessera's own
// headers, so the model runs in the same engine, with the same arithmetic, as
// a built-in one. The cache (TESSERA_CACHE, else $XDG_CACHE_HOME/tessera,
// else ~/.cache/tessera) holds, per model, <key>.cpp (the generated source, to
// read what ran) and <key>.so, the key a hash of the source, the compiler, the
// flags, the CPU's features (with -march=native) and tessera's engine headers. Both are written under a temporary name
// and renamed into place, so processes compiling the same model at once (MPI
// ranks of several nodes on a shared cache, two jobs) never see half a file.
#pragma once

#include <memory>
#include <string>

namespace tessera::fit::jit {

struct Toolchain {
  std::string compiler;     // path or name on PATH
  std::string flags;        // as one string of space-separated words
  std::string include_dir;  // holds core/ and fit/ (tessera's src/)
};

// The toolchain recorded at configure time, TESSERA_CXX (compiler) and
// TESSERA_INCLUDE (the headers' directory) applied.
Toolchain toolchain();
// The cache directory (created when missing). Throws std::runtime_error.
std::string cache_dir();

// The object of `source` in the cache: its path, compiled first when it is not
// there yet (compiled set to true then). Throws std::invalid_argument with a
// one-line message for a missing compiler (what to install) or a compile
// error (the compiler's first error line).
std::string build(const std::string& source, bool* compiled = nullptr);

// A loaded shared object (dlopen), closed by the destructor.
class Library {
 public:
  explicit Library(const std::string& path);
  ~Library();
  Library(const Library&) = delete;
  Library& operator=(const Library&) = delete;
  // The address of symbol `name`; throws std::runtime_error when missing.
  void* symbol(const char* name) const;

 private:
  void* handle_ = nullptr;
  std::string path_;
};

}  // namespace tessera::fit::jit
