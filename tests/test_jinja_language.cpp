// The Jinja language as jinja2 3.1 (trim_blocks, lstrip_blocks, loopcontrols) defines it.
// Expected outputs were checked against Python jinja2 3.1.2.
#include <gtest/gtest.h>

#include "slm/jinja.hpp"
#include "test_jinja_support.hpp"

namespace {

using slm::test::render;
using slm::test::render_error;

const char* const context = R"({"x": 1, "s": "Hello", "n": null, "f": 1.5, "l": [3, 1, 2],
  "d": {"a": 1, "b": [1, 2], "items": 5},
  "msgs": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]})";

TEST(JinjaOutput, PrintsValuesAsPythonStr) {
  EXPECT_EQ(render("{{ n }} {{ true }} {{ false }} {{ 42 }} {{ 1.5 }} {{ 'a' }}", context), "None True False 42 1.5 a");
  EXPECT_EQ(render("{{ 1.0 }} {{ 1e100 }} {{ -0.0 }} {{ 1/3 }} {{ 0.00001 }} {{ 1e15 }} {{ 1e16 }}"),
            "1.0 1e+100 -0.0 0.3333333333333333 1e-05 1000000000000000.0 1e+16");
  EXPECT_EQ(render("{{ d }}", context), "{'a': 1, 'b': [1, 2], 'items': 5}");
  EXPECT_EQ(render(R"({{ ["it's", 'a"b', "a'b\"c", none, true] }})"), R"(["it's", 'a"b', 'a\'b"c', None, True])");
  EXPECT_EQ(render("{{ (1,) }} {{ () }} {{ 1, 2 }}"), "(1,) () (1, 2)");
  EXPECT_EQ(render(R"({{ ["é\n\x01"] }})"), R"(['é\n\x01'])");
  EXPECT_EQ(render("{{ missing }}|{{ d.missing }}|{{ l[10] }}", context), "||");
}

TEST(JinjaWhitespace, TrimBlocksRemovesTheNewlineAfterBlockTags) {
  EXPECT_EQ(render("{% if true %}\na\n{% endif %}\nb"), "a\nb");
  EXPECT_EQ(render("{# comment #}\nb"), "b");
  EXPECT_EQ(render("{{ 'no trim after output' }}\nb"), "no trim after output\nb");
}

TEST(JinjaWhitespace, LstripBlocksRemovesIndentationBeforeBlockTags) {
  EXPECT_EQ(render("  {% if true %}\n    a\n  {% endif %}\n  b"), "    a\n  b");
  EXPECT_EQ(render("x {% if true %} y {% endif %} z"), "x  y  z");
  EXPECT_EQ(render("  {{ 'output tags keep their indentation' }}"), "  output tags keep their indentation");
  EXPECT_EQ(render("  {%+ if true %}c{% endif +%}\nd"), "  c\nd");
}

TEST(JinjaWhitespace, MinusStripsAllWhitespaceOnItsSide) {
  EXPECT_EQ(render("a  \n  {{- 'b' -}}  \n  c"), "abc");
  EXPECT_EQ(render("a\n  {#- comment -#}\n  b"), "ab");
  EXPECT_EQ(render("{%- for m in msgs -%}\n    {{ m.content }}\n{%- endfor -%}", context), "hiyo");
}

TEST(JinjaWhitespace, OneTrailingNewlineIsDropped) {
  EXPECT_EQ(render("a\n"), "a");
  EXPECT_EQ(render("a\n\n"), "a\n");
  EXPECT_EQ(render("a\r\nb\rc"), "a\nb\nc");
}

TEST(JinjaWhitespace, RawBlocksAreNotParsed) {
  EXPECT_EQ(render("{% raw %}{{ x }}{% endraw %}|{%- raw -%}  {{ y }}  {%- endraw -%}  |"), "{{ x }}|{{ y }}|");
  EXPECT_EQ(render("  {% raw %}\n  x\n  {% endraw %}\nz"), "\n  x\nz");
}

TEST(JinjaLiterals, StringsTakePythonEscapes) {
  EXPECT_EQ(render(R"({{ 'a\tb\\n\x41\u00e9\101' }})"), "a\tb\\nA\xC3\xA9" "A");
  EXPECT_EQ(render(R"({{ '\d' }}|{{ "a" "b" }}|{{ 'it\'s' }})"), R"(\d|ab|it's)");
  EXPECT_EQ(render("{{ \"multi\nline\" }}"), "multi\nline");
}

TEST(JinjaLiterals, NumbersListsTuplesAndDicts) {
  EXPECT_EQ(render("{{ 0x1F }} {{ 0b101 }} {{ 0o17 }} {{ 1_000 }} {{ 1.5e3 }} {{ 1e3 }}"), "31 5 15 1000 1500.0 1000.0");
  EXPECT_EQ(render("{{ [1, 'a', [2]] }} {{ (1, 2) }} {{ {'k': 'v', 1: 2} }} {{ {'a': 1}}}"), "[1, 'a', [2]] (1, 2) {'k': 'v', 1: 2} {'a': 1}");
  EXPECT_EQ(render("{{ true }} {{ True }} {{ none }} {{ None }}"), "True True None None");
}

TEST(JinjaOperators, ArithmeticFollowsPython) {
  EXPECT_EQ(render("{{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 4 / 2 }} {{ 7.5 // 2 }} {{ 2 ** -1 }}"), "3 -4 2 3.5 2.0 3.0 0.5");
  EXPECT_EQ(render("{{ 2 ** 3 ** 2 }} {{ 10 % -4 }} {{ -10.5 % 3 }} {{ 0.1 + 0.2 }}"), "64 -2 1.5 0.30000000000000004");
  EXPECT_EQ(render("{{ true + 1 }} {{ 3 * 'ab' }} {{ [1] * 2 }} {{ 'ab' * 0 }}|{{ [1] + [2] }}"), "2 ababab [1, 1] |[1, 2]");
  EXPECT_EQ(render("{{ -x }} {{ -f }} {{ +x }} {{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }}", context), "-1 -1.5 1 7 9");
}

TEST(JinjaOperators, TildeConcatenatesStrings) {
  EXPECT_EQ(render("{{ 'a' ~ 1 ~ none ~ true ~ missing ~ [1] }}"), "a1NoneTrue[1]");
}

TEST(JinjaOperators, ComparisonsAndMembership) {
  EXPECT_EQ(render("{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 'a' < 'b' }} {{ [1, 2] < [1, 3] }} {{ 1 <= 1.0 }}"), "True False True True True");
  EXPECT_EQ(render("{{ (1, 2) == [1, 2] }} {{ {'a': 1, 'b': 2} == {'b': 2, 'a': 1} }} {{ 1 == 1.0 }} {{ true == 1 }}"),
            "False True True True");
  EXPECT_EQ(render("{{ 'bc' in 'abcd' }} {{ 1 in l }} {{ 'a' in d }} {{ 'z' not in d }} {{ 'x' in missing }}", context),
            "True True True True False");
  EXPECT_EQ(render("{{ msgs[0] == msgs[0] }} {{ msgs[0] == msgs[1] }} {{ n == none }} {{ 0 == false }}", context),
            "True False True True");
}

TEST(JinjaOperators, AndOrReturnAnOperandAndNotNegates) {
  EXPECT_EQ(render("{{ x and s }} {{ n or 'fallback' }} {{ 0 or '' }}|{{ not x }} {{ not n }}", context), "Hello fallback |False True");
  EXPECT_EQ(render("{{ not x == 1 }} {{ -1|abs }} {{ not x is none }}", context), "False 1 True");
}

TEST(JinjaOperators, InlineIf) {
  EXPECT_EQ(render("{{ 'a' if x else 'b' }} {{ 'a' if n else 'b' }} [{{ 'a' if n }}]", context), "a b []");
  EXPECT_EQ(render("{{ 1 if n else 2 if x else 3 }}", context), "2");
}

TEST(JinjaLookup, AttributeTriesTheMethodFirstSubscriptTriesTheKeyFirst) {
  EXPECT_EQ(render("{{ d.a }} {{ d['a'] }} {{ d['items'] }} {{ d.items()|list|length }}", context), "1 1 5 3");
  EXPECT_EQ(render("{{ d.b[0] }} {{ d.b.1 }} {{ msgs[-1].role }} {{ msgs[0]['content'] }}", context), "1 2 assistant hi");
  EXPECT_EQ(render("{{ n.attr }}|{{ n[0] }}|{{ x.attr }}|{{ s[99] }}", context), "|||");
}

TEST(JinjaLookup, SlicesFollowPython) {
  EXPECT_EQ(render("{{ s[1:3] }} {{ s[::-1] }} {{ s[-1] }} {{ s[:-1] }} {{ l[1:] }} {{ l[::2] }}", context), "el olleH o Hell [1, 2] [3, 2]");
  EXPECT_EQ(render(R"({{ "héllo"[1:3] }} {{ "héllo"|length }} {{ "abc"[-5:2] }} {{ (1, 2, 3)[1:] }})"), "él 5 ab (2, 3)");
}

TEST(JinjaUndefined, IsEmptyFalsyAndIterableButCannotBeUsedInArithmetic) {
  EXPECT_EQ(render("[{{ u }}] {{ u is defined }} {{ u is undefined }} {{ 'yes' if u else 'no' }} {{ u|length }}"), "[] False True no 0");
  EXPECT_EQ(render("{% for c in u %}never{% endfor %}{{ u|list }} {{ u ~ 's' }} {{ u == u }}"), "[] s True");
  EXPECT_NE(render_error("{{ u.attr }}").find("UndefinedError: 'u' is undefined"), std::string::npos);
  EXPECT_NE(render_error("{{ 's' + u }}").find("UndefinedError"), std::string::npos);
  EXPECT_NE(render_error("{{ u + 1 }}").find("UndefinedError"), std::string::npos);
  EXPECT_NE(render_error("{{ u['k'] }}").find("UndefinedError"), std::string::npos);
  EXPECT_NE(render_error("{{ d.missing.deeper }}", context).find("'dict object' has no attribute 'missing'"), std::string::npos);
}

TEST(JinjaTypes, PythonTypeErrorsAreErrors) {
  EXPECT_NE(render_error("{{ 's' + 1 }}").find("TypeError: can only concatenate str (not \"int\") to str"), std::string::npos);
  EXPECT_NE(render_error("{{ 1 + 's' }}").find("TypeError: unsupported operand type(s) for +: 'int' and 'str'"), std::string::npos);
  EXPECT_NE(render_error("{{ none < 1 }}").find("TypeError"), std::string::npos);
  EXPECT_NE(render_error("{{ 1 in 'abc' }}").find("TypeError"), std::string::npos);
  EXPECT_NE(render_error("{% for c in n %}{% endfor %}", context).find("'NoneType' object is not iterable"), std::string::npos);
  EXPECT_NE(render_error("{{ 1 / 0 }}").find("ZeroDivisionError"), std::string::npos);
  EXPECT_NE(render_error("{{ 2 ** 62 + 2 ** 62 }}").find("OverflowError"), std::string::npos);
}

TEST(JinjaIf, ElifAndElseAndNoScope) {
  const char* source = "{% for v in [1, 2, 3] %}{% if v == 1 %}one{% elif v == 2 %}two{% else %}many{% endif %} {% endfor %}";
  EXPECT_EQ(render(source), "one two many ");
  EXPECT_EQ(render("{% set x = 5 %}{% if true %}{% set x = 6 %}{% endif %}{{ x }}"), "6");
}

TEST(JinjaFor, LoopVariables) {
  EXPECT_EQ(render("{% for i in 'abc' %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}"
                   "{{ loop.first }}{{ loop.last }}{{ loop.length }} {% endfor %}"),
            "1032TrueFalse3 2121FalseFalse3 3210FalseTrue3 ");
  EXPECT_EQ(render("{% for x in [1, 2, 3] %}{{ loop.previtem }}-{{ loop.nextitem }}-{{ loop.cycle('a', 'b') }} {% endfor %}"),
            "-2-a 1-3-b 2--a ");
  EXPECT_EQ(render("{% for x in [1, 1, 2, 2, 1] %}{% if loop.changed(x) %}{{ x }}{% endif %}{% endfor %}"), "121");
}

TEST(JinjaFor, ElseFilterAndUnpacking) {
  EXPECT_EQ(render("{% for i in [] %}a{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(render("{% for i in [1, 2, 3] if i > 1 %}{{ loop.index }}/{{ loop.length }}:{{ i }} {% endfor %}"), "1/2:2 2/2:3 ");
  EXPECT_EQ(render("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}", context), "a=1;b=[1, 2];items=5;");
  EXPECT_EQ(render("{% for (a, b) in [(1, 2), (3, 4)] %}{{ a + b }}{% endfor %}|{% for k in d %}{{ k }}{% endfor %}", context),
            "37|abitems");
  EXPECT_NE(render_error("{% for a, b in [[1, 2], [3]] %}{% endfor %}").find("not enough values to unpack (expected 2, got 1)"),
            std::string::npos);
}

TEST(JinjaFor, BreakAndContinue) {
  EXPECT_EQ(render("{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i == 5 %}{% break %}{% endif %}{{ i }}{% endfor %}"),
            "0134");
  EXPECT_EQ(render("{% for i in range(3) %}{% for j in range(3) %}{% if j == 1 %}{% break %}{% endif %}{{ i }}{{ j }} {% endfor %}{% endfor %}"),
            "00 10 20 ");
}

TEST(JinjaFor, RecursiveLoops) {
  EXPECT_EQ(render("{% set tree = [{'c': [{'c': []}, {'c': [{'c': []}]}]}] %}"
                   "{% for node in tree recursive %}[{{ loop.depth }}{% if node.c %}{{ loop(node.c) }}{% endif %}]{% endfor %}"),
            "[1[2][2[3]]]");
}

TEST(JinjaScope, SetInsideALoopDoesNotLeak) {
  EXPECT_EQ(render("{% for i in [1, 2] %}[{{ x }}]{% set x = i %}({{ x }}){% endfor %}{{ x }}", context), "[1](1)[1](2)1");
  EXPECT_EQ(render("{% for i in [1, 2] %}{% set y = i %}{% endfor %}[{{ y }}]"), "[]");
  EXPECT_EQ(render("{% filter upper %}{% set q = 3 %}a{% endfilter %}[{{ q }}]{% with %}{% set r = 1 %}{% endwith %}[{{ r }}]"), "A[][]");
}

TEST(JinjaScope, NamespacesCarryStateOutOfLoops) {
  EXPECT_EQ(render("{% set ns = namespace(total=0, seen=[]) %}{% for i in range(4) %}{% set ns.total = ns.total + i %}"
                   "{% set ns.seen = ns.seen + [i] %}{% endfor %}{{ ns.total }} {{ ns.seen }} {{ ns }}"),
            "6 [0, 1, 2, 3] <Namespace {'total': 6, 'seen': [0, 1, 2, 3]}>");
  EXPECT_EQ(render("{% set ns = namespace() %}{% set ns.index = 0 %}{% set ns.index = ns.index + 1 %}{{ ns.index }}{{ ns['index'] }}"), "11");
  EXPECT_NE(render_error("{% set ns = 5 %}{% set ns.a = 1 %}").find("cannot assign attribute on non-namespace object"), std::string::npos);
}

TEST(JinjaSet, TuplesBlocksAndFilters) {
  EXPECT_EQ(render("{% set a, b = 1, 2 %}{{ a }}{{ b }}"), "12");
  EXPECT_EQ(render("{% set v %}{% set inner = 1 %}Block {{ 1 + 1 }}{% endset %}{{ v }}[{{ inner }}]"), "Block 2[]");
  EXPECT_EQ(render("{% set v | upper | trim %}  abc  {% endset %}[{{ v }}]"), "[ABC]");
  EXPECT_EQ(render("{% set ns = namespace() %}{% for i in [1, 2] %}{% set ns.text %}item {{ i }}{% endset %}{% endfor %}{{ ns.text }}"),
            "item 2");
}

TEST(JinjaMacro, DefaultsKeywordsAndCallTimeDefaults) {
  const char* greet = "{% macro greet(name, greeting='Hello', punct='!') %}{{ greeting }}, {{ name }}{{ punct }}{% endmacro %}";
  EXPECT_EQ(render(std::string(greet) + "{{ greet('A') }} {{ greet('B', punct='?') }} {{ greet(greeting='Hi', name='C') }}"),
            "Hello, A! Hello, B? Hi, C!");
  EXPECT_EQ(render("{% macro m(a, b=a * 2) %}{{ a }},{{ b }}{% endmacro %}{{ m(3) }}"), "3,6");
  EXPECT_EQ(render("{% macro m(a) %}[{{ a }}]{% endmacro %}{{ m() }}"), "[]");
}

TEST(JinjaMacro, RecursionVarargsKwargsAndGlobals) {
  EXPECT_EQ(render("{% macro f(n) %}{% if n > 0 %}{{ n }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(5) }}"), "54321");
  EXPECT_EQ(render("{% macro m(a) %}{{ a }}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1, 2, 3, k=4) }}"), "1(2, 3){'k': 4}");
  EXPECT_EQ(render("{% macro m() %}{{ z }}{% endmacro %}{% set z = 5 %}{{ m() }}"), "5");
  EXPECT_EQ(render("{% set a = 1 %}{% macro m() %}{% set a = 2 %}{{ a }}{% endmacro %}{{ m() }}{{ a }}"), "21");
  EXPECT_NE(render_error("{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}").find("macro 'm' takes not more than 1 argument(s)"),
            std::string::npos);
  EXPECT_NE(render_error("{% macro m(a) %}{% endmacro %}{{ m(b=1) }}").find("macro 'm' takes no keyword argument 'b'"),
            std::string::npos);
}

TEST(JinjaMacro, CallBlocksPassCaller) {
  EXPECT_EQ(render("{% macro wrap() %}<{{ caller() }}>{% endmacro %}{% call wrap() %}inner {{ x }}{% endcall %}", context), "<inner 1>");
  EXPECT_EQ(render("{% macro each(items) %}{% for i in items %}{{ caller(i) }}{% endfor %}{% endmacro %}"
                   "{% call(item) each([1, 2]) %}[{{ item }}]{% endcall %}"),
            "[1][2]");
  EXPECT_EQ(render("{% macro m() %}{{ 'yes' if caller is defined else 'no' }}{% endmacro %}{{ m() }}"), "no");
}

TEST(JinjaStatements, WithFilterBlockAndPrint) {
  EXPECT_EQ(render("{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}"), "3");
  EXPECT_EQ(render("{% with a = 1, b = a %}[{{ b }}]{% endwith %}"), "[]");  // values see the outer scope
  EXPECT_EQ(render("{% filter upper %}hello {{ s }}{% endfilter %}", context), "HELLO HELLO");
  EXPECT_EQ(render("{% block body %}in block{% endblock %}{% generation %}text{% endgeneration %}"), "in blocktext");
}

TEST(JinjaGlobals, RaiseExceptionKeepsTheTemplateMessage) {
  try {
    render("line one\n{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}");
    FAIL() << "raise_exception did not throw";
  } catch (const slm::jinja::TemplateException& e) {
    EXPECT_STREQ(e.what(), "Conversation roles must alternate user/assistant/user/assistant/...");
  }
}

TEST(JinjaErrors, SyntaxErrorsNameTheLineAndTheConstruct) {
  EXPECT_EQ(render_error("a\n{% if x %}\nb"), "jinja: line 3: unexpected end of template, expected 'elif' or 'else' or 'endif'");
  EXPECT_EQ(render_error("{% foo %}"), "jinja: line 1: Encountered unknown tag 'foo'.");
  EXPECT_EQ(render_error("{{ x|nofilter }}"), "jinja: line 1: No filter named 'nofilter'.");
  EXPECT_EQ(render_error("{{ x is notatest }}"), "jinja: line 1: No test named 'notatest'.");
  EXPECT_EQ(render_error("{% include 'other.jinja' %}"),
            "jinja: line 1: unsupported construct: {% include %} (templates cannot load other templates)");
  EXPECT_EQ(render_error("{% break %}"), "jinja: line 1: 'break' outside of a loop");
  EXPECT_EQ(render_error("{# never closed"), "jinja: line 1: Missing end of comment tag");
  EXPECT_EQ(render_error("{{ (1 }}"), "jinja: line 1: unexpected '}', expected ')'");
  EXPECT_EQ(render_error("{% macro m(a=1, b) %}{% endmacro %}"), "jinja: line 1: non-default argument follows default argument");
  EXPECT_EQ(render_error("{{ x is defined is defined }}"), "jinja: line 1: You cannot chain multiple tests with is");
  EXPECT_EQ(render_error("{{ x|groupby('a') }}"), "jinja: line 1: TemplateRuntimeError: unsupported construct: filter 'groupby' is not implemented");
}

TEST(JinjaErrors, RuntimeErrorsNameTheLine) {
  EXPECT_EQ(render_error("ok\n\n{{ 1 + 's' }}"), "jinja: line 3: TypeError: unsupported operand type(s) for +: 'int' and 'str'");
  // Messages stay on one line even when they quote text with newlines.
  EXPECT_EQ(render_error("{{ 'a\nb' + 1 }}"), "jinja: line 1: TypeError: can only concatenate str (not \"int\") to str");
  EXPECT_EQ(render_error("{{ d['x\ny'].z }}", R"({"d": {}})"), "jinja: line 1: UndefinedError: 'dict object' has no attribute 'x\\ny'");
}

TEST(JinjaSandbox, MutatingMethodsRaiseSecurityError) {
  EXPECT_EQ(render_error("{{ l.append(4) }}", context), "jinja: line 1: SecurityError: access to attribute 'append' of 'list' object is unsafe.");
  EXPECT_EQ(render_error("{{ d.update({'a': 2}) }}", context), "jinja: line 1: SecurityError: access to attribute 'update' of 'dict' object is unsafe.");
  EXPECT_NE(render_error("{{ d.pop('a') }}", context), "");
  EXPECT_EQ(render("{{ d.__class__ }}|{{ s.__len__ }}", context), "|");  // private attributes are undefined
}

}  // namespace
