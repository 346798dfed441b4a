// Private to the planner: a model file bound from its header alone (GgufFile::open_header), and
// the matrices one token multiplies, for the memory plan (plan_memory.cpp) and the speed
// prediction (plan_speed.cpp).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "lib/model/weights.hpp"
#include "slm/gguf.hpp"
#include "slm/model.hpp"

namespace slm::plan {

// One matrix (or a stack of a mixture's experts) as the forward pass multiplies it.
struct PlannedMatrix {
  const ops::WeightMatrix* w = nullptr;
  int64_t n_matrices = 1;      // experts in the stack
  int64_t used_per_token = 1;  // of them, per token (a mixture's k)
  bool repacked = false;       // Model::load repacks it into 8-row tiles
  bool logit_rows_only = false;  // the output matrix: a prompt multiplies only its last row
};

struct PlannedModel {
  GgufFile file;
  ModelConfig config;
  std::unique_ptr<ModelWeights> weights;
  std::vector<PlannedMatrix> matrices;  // every matrix one token multiplies (the output first)
};

// Opens `path` for its header, reads the config (n_vocab from the tokenizer's token list) and
// binds every weight with the loader's checks. Throws slm::Error.
PlannedModel bind_planned_model(const std::string& path);

}  // namespace slm::plan
