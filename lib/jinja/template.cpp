// slm::jinja::Template: parse once, render many times (render is const and thread-safe).
#include "lib/jinja/evaluator.hpp"
#include "lib/jinja/parser.hpp"
#include "slm/jinja.hpp"

namespace slm::jinja {

Template Template::parse(std::string_view source) {
  Template result;
  result.program_ = detail::parse_template(source);
  return result;
}

std::string Template::render(const Value& context, const RenderOptions& options) const {
  if (!program_) throw slm::Error("jinja: render called on a template that was never parsed");
  if (!context.is_dict() && !context.is_undefined() && !context.is_none())
    throw slm::Error("jinja: the render context must be a dict");
  detail::Evaluator evaluator(options);
  return evaluator.render(*program_, context);
}

}  // namespace slm::jinja
