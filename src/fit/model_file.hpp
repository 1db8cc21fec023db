// Model files: a model of the user's own written down once, with its
// parameters' starts, units and bounds, named constants and definitions, and
// the maps derived from it. Line-oriented (README, "Your own model"):
//
//   # esr15n: one 15N doublet (the first comment lines describe the model)
//   param offset start=baseline unit=y
//   param pos    start=2870     unit=x bound=2000:4000
//   param fwhm   start=1        unit=x bound=0.05:50
//   param amp    start=depth/2  unit=y
//   const A = 3.03
//   let w = fwhm / 2
//   value = offset - amp * (1 / (1 + ((x - pos - A / 2) / w)^2) + 1 / (1 + ((x - pos + A / 2) / w)^2))
//   derive d[MHz] = pos
//
// start= takes a number, `baseline` (the median of the mean spectrum) or
// `depth` / `depth/N` ((median - minimum) / N of the mean spectrum); unit=
// takes x or y (the sweep's and the data's units, from the input file) or a
// unit's name. Shipped models are found by name (find_model).
#pragma once

#include <string>
#include <vector>

#include "user_model.hpp"

namespace tessera::fit {

// Parses a model file's text; `path` names it in messages ("PATH:LINE: what").
// Throws std::invalid_argument.
UserModelDescription parse_model_file(const std::string& text, const std::string& path);
// Reads and parses the file at path.
UserModelDescription load_model_file(const std::string& path);

// The file of the shipped model `name` (NAME.model), looked for in
// $TESSERA_MODELS (directories separated by ':'), then beside the tessera
// binary (models/, ../share/tessera/models/), then in the source tree it was
// built from; "" when there is none.
std::string find_model(const std::string& name);
// The names of the models find_model finds, sorted.
std::vector<std::string> shipped_models();

}  // namespace tessera::fit
