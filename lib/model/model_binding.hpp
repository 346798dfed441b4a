// What Model::load reads before it owns anything: the hyperparameters and the bound weights,
// for the loader and for slm-plan, which binds a file opened for its header only
// (GgufFile::open_header) to learn every matrix's shape and type with the loader's own checks.
#pragma once

#include <memory>
#include <vector>

#include "lib/model/weights.hpp"
#include "slm/model.hpp"

namespace slm {

// The architecture's hyperparameters, checked as Model::load checks them (n_vocab is left 0:
// the loader takes it from the tokenizer). Throws slm::Error for an unknown architecture or a
// missing or insane hyperparameter.
ModelConfig read_model_config(const GgufFile& file);

// Every tensor the architecture needs, bound with its shape and type checked; sets the config's
// tied_output and rope-factor flags. A header-only file gives views with null data.
std::unique_ptr<ModelWeights> bind_model_weights(const GgufFile& file, ModelConfig& config);

// The dense matrices Model::load repacks into the kernels' tiles, those of them the kernels read
// faster so (ops::should_interleave): the output and every layer's dense matrices, an unused
// slot's empty matrix included. A mixture's router, and qwen35's ssm_alpha and ssm_beta (a
// column per head), are multiplied as the file stores them.
std::vector<ops::WeightMatrix*> repackable_matrices(ModelWeights& weights);
std::vector<const ops::WeightMatrix*> repackable_matrices(const ModelWeights& weights);

// A mixture's experts, every layer's gate, up and down of each: repacked as the dense matrices
// are (each expert is a matrix of its own; the planner counts them per stack, so they are apart).
std::vector<ops::WeightMatrix*> expert_matrices(ModelWeights& weights);
std::vector<const ops::WeightMatrix*> expert_matrices(const ModelWeights& weights);

}  // namespace slm
