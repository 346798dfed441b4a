// Templates are untrusted: every way to exhaust the stack, memory or time ends in a clear
// slm::Error naming the bound, never a crash or a hang.
#include <gtest/gtest.h>
#include <pthread.h>

#include <string>

#include "slm/jinja.hpp"
#include "test_jinja_support.hpp"

namespace {

using slm::test::render;
using slm::test::render_error;

std::string repeated(const std::string& piece, int count) {
  std::string out;
  for (int i = 0; i < count; ++i) out += piece;
  return out;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(JinjaLimits, ParserNestingIsBounded) {
  EXPECT_TRUE(contains(render_error("{{ " + repeated("(", 5000) + "1" + repeated(")", 5000) + " }}"), "nested deeper than"));
  EXPECT_TRUE(contains(render_error("{{ " + repeated("-", 5000) + "1 }}"), "nested deeper than"));
  EXPECT_TRUE(contains(render_error("{{ " + repeated("not ", 5000) + "1 }}"), "nested deeper than"));
  EXPECT_TRUE(contains(render_error(repeated("{% if true %}", 5000) + repeated("{% endif %}", 5000)), "blocks nested deeper than 64"));
}

TEST(JinjaLimits, LongOperatorChainsAreBounded) {
  // Left-associative chains build deep trees without deep parser recursion.
  EXPECT_TRUE(contains(render_error("{{ 1" + repeated(" + 1", 100000) + " }}"), "expression nested deeper than 256"));
  EXPECT_TRUE(contains(render_error("{{ x" + repeated(".a", 100000) + " }}"), "expression nested deeper than 256"));
  EXPECT_TRUE(contains(render_error("{{ x" + repeated("|string", 100000) + " }}"), "expression nested deeper than 256"));
  EXPECT_EQ(render("{{ 1" + repeated(" + 1", 200) + " }}"), "201");
}

TEST(JinjaLimits, ManyElifBranchesAreFlat) {
  EXPECT_EQ(render("{% if false %}{% " + repeated("elif false %}{% ", 20000) + "else %}x{% endif %}"), "x");
}

TEST(JinjaLimits, MacroRecursionDepthIsBounded) {
  EXPECT_EQ(render_error("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"),
            "jinja: line 1: RecursionError: macro calls nested deeper than 100 (in macro 'f')");
  EXPECT_EQ(render("{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{% else %}done{% endif %}{% endmacro %}{{ f(99) }}"), "done");
}

TEST(JinjaLimits, LoopIterationsAndMacroCallsAreCountedTogether) {
  EXPECT_EQ(render_error("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"),
            "jinja: line 1: ResourceError: more than 1000000 loop iterations and macro calls");
  // Exponential recursion stays within the depth bound but not within the call count.
  EXPECT_TRUE(contains(render_error("{% macro f(n) %}{% if n > 0 %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}{{ f(60) }}"),
                       "more than 1000000 loop iterations and macro calls"));
  slm::jinja::RenderOptions options = slm::test::fixed_clock_options();
  options.limits.max_loop_iterations = 10;
  EXPECT_TRUE(contains(render_error("{% for i in range(11) %}{% endfor %}", "{}", options), "more than 10 loop iterations"));
  EXPECT_EQ(render_error("{% for i in range(10) %}{% endfor %}", "{}", options), "");
}

TEST(JinjaLimits, RangeIsBoundedLikeTheSandbox) {
  EXPECT_TRUE(contains(render_error("{{ range(200000)|length }}"), "Range too big"));
}

TEST(JinjaLimits, OutputSizeIsBounded) {
  EXPECT_EQ(render_error("{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}"),
            "jinja: line 1: ResourceError: output exceeds the limit of 16777216 bytes");
  slm::jinja::RenderOptions options = slm::test::fixed_clock_options();
  options.limits.max_output_bytes = 100;
  EXPECT_TRUE(contains(render_error(repeated("x", 101), "{}", options), "output exceeds the limit of 100 bytes"));
}

TEST(JinjaLimits, StringsAndListsCannotGrowWithoutBound) {
  EXPECT_TRUE(contains(render_error("{{ 'x' * 10000000000 }}"), "exceeds the size limit"));
  EXPECT_TRUE(contains(render_error("{% set ns = namespace(s='ab') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}"),
                       "exceeds the limit of 16777216 bytes"));
  EXPECT_TRUE(contains(render_error("{% set ns = namespace(l=[1]) %}{% for i in range(60) %}{% set ns.l = ns.l + ns.l %}{% endfor %}"),
                       "exceeds the limit of 2097152 items"));
  EXPECT_TRUE(contains(render_error("{{ ' '|center(1000000000) }}"), "exceeds the limit"));
  EXPECT_TRUE(contains(render_error("{{ '%999999999d' % 1 }}"), "width or precision too big"));
}

TEST(JinjaLimits, NestedValuesAreBounded) {
  EXPECT_TRUE(contains(render_error("{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% set ns.l = [ns.l] %}{% endfor %}"),
                       "value nested deeper than 512 levels"));
  EXPECT_THROW(slm::jinja::value_from_json(repeated("[", 100000) + repeated("]", 100000)), slm::Error);
}

TEST(JinjaLimits, WorkIsBoundedWhenValuesShareStructure) {
  // 2^60 leaves reachable through shared lists: printing, serializing or comparing them
  // must run out of work budget, not run for hours.
  const std::string build = "{% set ns = namespace(a=1, b=1) %}{% for i in range(60) %}{% set ns.a = [ns.a, ns.a] %}"
                            "{% set ns.b = [ns.b, ns.b] %}{% endfor %}";
  EXPECT_TRUE(contains(render_error(build + "{{ ns.a }}"), "work limit"));
  EXPECT_TRUE(contains(render_error(build + "{{ ns.a|tojson }}"), "work limit"));
  EXPECT_TRUE(contains(render_error(build + "{{ ns.a == ns.b }}"), "work limit"));
  EXPECT_EQ(render("{% set ns = namespace() %}{% set ns.a = ns %}{% set ns.b = ns %}{{ ns }}"),
            "<Namespace {'a': ..., 'b': ...}>");
}

// The deepest recursion templates can reach ends in an error, on a thread with the usual
// 8 MiB stack (an optimized build needs under 512 KiB; sanitizer builds need more).
TEST(JinjaLimits, DeepestRecursionEndsInAnError) {
  struct Job {
    std::string result;
  } job;
  auto run = [](void* argument) -> void* {
    auto* j = static_cast<Job*>(argument);
    // Macro recursion, each level inside nested blocks and a deep expression around the call.
    const std::string body = "{% if true %}{% for i in [1] %}{% if true %}{{ " + repeated("(n + ", 60) + "f(n - 1)" +
                             repeated(")", 60) + " }}{% endif %}{% endfor %}{% endif %}";
    j->result = render_error("{% macro f(n) %}" + body + "{% endmacro %}{{ f(1000) }}");
    return nullptr;
  };
  pthread_attr_t attributes;
  pthread_attr_init(&attributes);
  pthread_attr_setstacksize(&attributes, 8u << 20);
  pthread_t thread;
  ASSERT_EQ(pthread_create(&thread, &attributes, run, &job), 0);
  pthread_join(thread, nullptr);
  pthread_attr_destroy(&attributes);
  EXPECT_TRUE(contains(job.result, "RecursionError: template evaluation nested deeper than 1000 levels")) << job.result;
}

}  // namespace
