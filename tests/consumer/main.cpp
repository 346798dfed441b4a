// Loads a model through the installed/imported slm and prints its architecture and the
// first greedy token; exits non-zero on any error.
#include <slm/generate.hpp>

#include <cstdio>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: consumer MODEL.gguf\n");
    return 2;
  }
  try {
    auto model = slm::Model::load(argv[1]);
    slm::Session session(model);
    slm::SamplerParams params;
    params.temperature = 0;
    slm::Sampler sampler(params);
    slm::GenerateOptions options;
    options.max_tokens = 8;
    const auto prompt = model->tokenizer().tokenize("Once upon a time", true, false);
    const auto result = slm::generate(session, sampler, prompt, options, nullptr);
    std::printf("%s: %s\n", model->config().arch.c_str(), result.text.c_str());
    return result.tokens.empty() ? 1 : 0;
  } catch (const slm::Error& e) {
    std::fprintf(stderr, "consumer: error: %s\n", e.what());
    return 1;
  }
}
