// Jinja's builtin filters, tests and globals, the Python methods templates call, and the
// JSON conversions. Expected outputs were checked against Python jinja2 3.1.2.
#include <gtest/gtest.h>

#include "slm/jinja.hpp"
#include "test_jinja_support.hpp"

namespace {

using slm::jinja::Value;
using slm::test::render;
using slm::test::render_error;

const char* const context = R"({"x": 1, "s": "Hello", "n": null, "l": [3, 1, 2],
  "d": {"a": 1, "b": [1, 2], "items": 5}, "u8": "héllo wörld ☃ 😀",
  "msgs": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]})";

TEST(JinjaFilters, Strings) {
  EXPECT_EQ(render("{{ 'hello world'|title }} {{ 'hELLO wORLD'|capitalize }} {{ 'a-b c(d'|title }} [{{ 'ab'|center(6) }}]"),
            "Hello World Hello world A-B C(D [  ab  ]");
  EXPECT_EQ(render("{{ s|upper }} {{ s|lower }} {{ u8|upper }} {{ 'ß'|upper }} {{ 'ÀÉÎ'|lower }}", context),
            "HELLO hello HÉLLO WÖRLD ☃ 😀 SS àéî");
  EXPECT_EQ(render(R"([{{ " \t\n x \u3000"|trim }}] [{{ "xxhixx"|trim("x") }}] {{ "a-b-c"|replace("-", "+", 1) }} {{ "abc"|replace("", "-") }})"),
            "[x] [hi] a+b-c -a-b-c-");
  EXPECT_EQ(render("{{ 'a b  c'|wordcount }} {{ u8|wordcount }} {{ \"<a href='x'>&\"|e }} {{ 42|string }}", context),
            "3 2 &lt;a href=&#39;x&#39;&gt;&amp; 42");
  EXPECT_EQ(render("{{ 'abcdefghijklmnop qrstuvwxyz'|truncate(10) }}|{{ 'hello world foo bar baz qux'|truncate(12) }}|"
                   "{{ 'hello world'|truncate(5, true) }}"),
            "abcdefg...|hello...|he...");
  EXPECT_EQ(render("{{ '%s-%05.1f'|format('a', 2.25) }} {{ '%(k)s'|format(k='v') }}"), "a-002.2 v");
}

TEST(JinjaFilters, Indent) {
  EXPECT_EQ(render("{{ 'a\\nb\\n\\nc'|indent(2) }}|{{ 'a\\nb'|indent(2, true) }}|{{ 'a\\n\\nb'|indent(2, blank=true) }}"),
            "a\n  b\n\n  c|  a\n  b|a\n  \n  b");
  EXPECT_EQ(render("{{ 'x'|indent }}|{{ 'a\\nb'|indent('--') }}|{{ '\\n'|indent(first=true) }}|"), "x|a\n--b|    \n|");
}

TEST(JinjaFilters, SequencesAndMappings) {
  EXPECT_EQ(render("{{ l|first }}{{ l|last }}{{ l|min }}{{ l|max }}{{ l|length }}{{ l|count }}{{ l|sum }} {{ 'abc'|first }}{{ d|last }}", context),
            "3213336 aitems");
  EXPECT_EQ(render("{{ l|sort }} {{ l|sort(reverse=true) }} {{ ['b', 'A', 'a']|sort }} {{ [{'n': 2}, {'n': 1}]|sort(attribute='n') }}", context),
            "[1, 2, 3] [3, 2, 1] ['A', 'a', 'b'] [{'n': 1}, {'n': 2}]");
  EXPECT_EQ(render("{{ ['b', 'A', 'a']|unique|list }} {{ 'abc'|list }} {{ d|list }} {{ 'abc'|reverse }} {{ l|reverse|list }}", context),
            "['b', 'A'] ['a', 'b', 'c'] ['a', 'b', 'items'] cba [2, 1, 3]");
  EXPECT_EQ(render("{{ {'b': 1, 'A': 2, 'a': 3}|dictsort }} {{ {'b': 1, 'a': 2}|dictsort(by='value', reverse=true) }}"),
            "[('A', 2), ('a', 3), ('b', 1)] [('a', 2), ('b', 1)]");
  EXPECT_EQ(render("{{ d|items|list }} {{ missing|items|list }}", context), "[('a', 1), ('b', [1, 2]), ('items', 5)] []");
  EXPECT_EQ(render("{{ range(5)|batch(2, 'x')|list }} {{ [1, 2, 3, 4, 5]|slice(2)|list }}"), "[[0, 1], [2, 3], [4, 'x']] [[1, 2, 3], [4, 5]]");
  EXPECT_EQ(render("{{ [1, 2, 3]|sum(start=10) }} {{ [{'x': 1}, {'x': 5}]|max(attribute='x') }} {{ 'aBc'|min }} {{ []|max }}|"),
            "16 {'x': 5} a |");
  EXPECT_EQ(render("{{ [1, 2]|join }} {{ l|join(', ') }} {{ msgs|join('|', attribute='role') }}", context), "12 3, 1, 2 user|assistant");
}

TEST(JinjaFilters, MapSelectReject) {
  EXPECT_EQ(render("{{ msgs|map(attribute='role')|join(', ') }} {{ [1, 2, 3]|map('string')|join('-') }} "
                   "{{ [{'a': 1}, {'b': 2}]|map(attribute='a', default=0)|list }}", context),
            "user, assistant 1-2-3 [1, 0]");
  EXPECT_EQ(render("{{ [1, 2, 3]|select('odd')|list }} {{ [1, 2, 3]|reject('odd')|list }} {{ [0, 1, '', 'a', none]|select|list }}"),
            "[1, 3] [2] [1, 'a']");
  EXPECT_EQ(render("{{ msgs|selectattr('role', 'equalto', 'user')|list }} {{ msgs|rejectattr('role', 'eq', 'user')|map(attribute='content')|list }}",
                   context),
            "[{'role': 'user', 'content': 'hi'}] ['yo']");
  EXPECT_EQ(render("{{ ['a', 'code_interpreter', 'b']|reject('equalto', 'code_interpreter')|join(', ') }}"), "a, b");
}

TEST(JinjaFilters, Numbers) {
  EXPECT_EQ(render("{{ '42'|int }} {{ ' 4_2 '|int }} {{ '3.9'|int }} {{ 'x'|int }} {{ '0x1A'|int(base=16) }} {{ none|int }} {{ 3.9|int }}"),
            "42 42 3 0 26 0 3");
  EXPECT_EQ(render("{{ '1e3'|float }} {{ 'abc'|float }} {{ 3|float }} {{ -3|abs }} {{ -2.5|abs }}"), "1000.0 0.0 3.0 3 2.5");
  EXPECT_EQ(render("{{ 3.7|round }} {{ 3|round }} {{ 2.5|round }} {{ 2.675|round(2) }} {{ -3.5|round }} {{ 3.14159|round(2, 'floor') }}"),
            "4.0 3 2.0 2.67 -4.0 3.14");
}

TEST(JinjaFilters, DefaultAndLength) {
  EXPECT_EQ(render("{{ n|default('d') }} {{ missing|default('d') }} {{ missing|d('d') }} {{ ''|default('d', true) }} [{{ ''|default('d') }}]", context),
            "None d d d []");
  EXPECT_EQ(render("{{ s|length }} {{ u8|length }} {{ d|length }} {{ missing|length }}", context), "5 15 3 0");
  EXPECT_NE(render_error("{{ n|length }}", context).find("object of type 'NoneType' has no len()"), std::string::npos);
}

TEST(JinjaFilters, TojsonIsPythonJsonDumps) {
  EXPECT_EQ(render("{{ [1, 'a', none, true, 1.5, {'k': [1]}, (2, 3)]|tojson }}"), R"([1, "a", null, true, 1.5, {"k": [1]}, [2, 3]])");
  EXPECT_EQ(render("{{ {'a': {'b': []}, 'c': {}}|tojson(indent=2) }}"), "{\n  \"a\": {\n    \"b\": []\n  },\n  \"c\": {}\n}");
  EXPECT_EQ(render("{{ [1, [2]]|tojson(indent=0) }}"), "[\n1,\n[\n2\n]\n]");
  EXPECT_EQ(render(R"({{ "<é>&'\"\\\n\x01"|tojson }} {{ "é😀"|tojson(ensure_ascii=true) }})"), R"("<é>&'\"\\\n\u0001" "\u00e9\ud83d\ude00")");
  EXPECT_EQ(render("{{ {'z': 1, 'a': 2}|tojson(sort_keys=true) }} {{ {'z': 1, 'a': 2}|tojson(separators=(',', ':')) }} {{ {1: 'a'}|tojson }}"),
            R"({"a": 2, "z": 1} {"z":1,"a":2} {"1": "a"})");
  EXPECT_NE(render_error("{{ [missing]|tojson }}").find("Object of type Undefined is not JSON serializable"), std::string::npos);
}

TEST(JinjaTests, TypesAndValues) {
  EXPECT_EQ(render("{{ x is defined }} {{ y is defined }} {{ n is none }} {{ x is not none }} {{ 'a' is string }} {{ x is number }} "
                   "{{ 1 is integer }} {{ 1.5 is float }} {{ true is boolean }} {{ false is false }} {{ 0 is false }} {{ true is true }}",
                   context),
            "True False True True True True True True True True False True");
  EXPECT_EQ(render("{{ d is mapping }} {{ l is mapping }} {{ l is iterable }} {{ x is iterable }} {{ s is sequence }} {{ missing is iterable }}",
                   context),
            "True False True False True True");
  EXPECT_EQ(render("{{ x is odd }} {{ x is even }} {{ 10 is divisibleby(5) }} {{ 9 is divisibleby 2 }} {{ 'ab' is lower }} {{ 'Ab' is upper }}",
                   context),
            "True False True False True False");
  EXPECT_EQ(render("{{ 3 is eq 3 }} {{ 3 is ne 3 }} {{ 3 is lt 4 }} {{ 3 is gt 4 }} {{ 3 is le 3 }} {{ 3 is ge 4 }} {{ 3 is equalto 3 }} "
                   "{{ 1 is in [1] }} {{ none is sameas none }} {{ 'upper' is filter }} {{ 'odd' is test }}"),
            "True False True False True False True True True True True");
}

TEST(JinjaMethods, StringMethodsFollowPython) {
  EXPECT_EQ(render("{{ ' a  b '.split() }} {{ 'a,b,,c'.split(',') }} {{ 'a b c'.split(' ', 1) }} {{ 'a.b.c'.rsplit('.', 1) }}"),
            "['a', 'b'] ['a', 'b', '', 'c'] ['a', 'b c'] ['a.b', 'c']");
  EXPECT_EQ(render("{{ 'xxaxx'.strip('x') }} [{{ '  x  '.lstrip() }}] [{{ '  x  '.rstrip() }}] {{ 'abcx'.rstrip('xc') }} {{ '\\nq\\n'.lstrip('\\n') }}"),
            "a [x  ] [  x] ab q\n");
  EXPECT_EQ(render("{{ 'abc'.startswith(('x', 'a')) }} {{ 'abc'.endswith('bc') }} {{ 'abc'.find('c') }} {{ 'a-b'.replace('-', '+') }}"),
            "True True 2 a+b");
  EXPECT_EQ(render("{{ 'hello world\\'s x1y'.title() }} {{ 'Hi'.upper() }}{{ 'Hi'.lower() }} {{ 'ab'.center(6, '*') }} {{ '5'.zfill(3) }}"),
            "Hello World'S X1Y HIhi **ab** 005");
  EXPECT_EQ(render("{{ 'a\\nb\\r\\nc'.splitlines() }} {{ 'a,b'.partition(',') }} {{ ', '.join(['a', 'b']) }} {{ 'abcabc'.count('b') }}"),
            "['a', 'b', 'c'] ('a', ',', 'b') a, b 2");
  EXPECT_EQ(render("{{ '{0} {1} {0}'.format('a', 'b') }} {{ '{:>5}|{:<3}|{:^5}|{:.2f}|{name!r}'.format('r', 'l', 'c', 3.14159, name='z') }}"),
            "a b a     r|l  |  c  |3.14|'z'");
  EXPECT_EQ(render("{{ '{:05d} {:,} {:.1%} {:x} {:#x} {:+.2f}'.format(42, 1234567, 0.256, 255, 255, 3.14159) }}"),
            "00042 1,234,567 25.6% ff 0xff +3.14");
}

TEST(JinjaMethods, DictAndListMethods) {
  EXPECT_EQ(render("{{ d.get('a') }} {{ d.get('zz') }} {{ d.get('zz', 2) }} {{ d.keys()|list }} {{ d.values()|list|length }}", context),
            "1 None 2 ['a', 'b', 'items'] 3");
  EXPECT_EQ(render("{{ [1, 2, 1].count(1) }} {{ [1, 2].index(2) }} {% for k, v in d.items() %}{{ k }}{% endfor %}", context), "2 1 abitems");
}

TEST(JinjaMethods, PercentFormatting) {
  EXPECT_EQ(render("{{ '%05.2f|%s|%r|%x|%-4d|%c' % (3.14159, 'a', 'b', 255, 7, 65) }}"), "03.14|a|'b'|ff|7   |A");
  EXPECT_EQ(render("{{ '%d%%' % 5 }} {{ '%s' % [1, 2] }} {{ '%(a)s-%(b)d' % {'a': 'x', 'b': 3} }} {{ '%+d % d %05d %#o' % (5, 5, -42, 8) }}"),
            "5% [1, 2] x-3 +5  5 -0042 0o10");
  EXPECT_NE(render_error("{{ '%s %s' % (1,) }}").find("not enough arguments for format string"), std::string::npos);
}

TEST(JinjaGlobals, RangeDictNamespaceCyclerJoiner) {
  EXPECT_EQ(render("{{ range(3)|list }} {{ range(1, 10, 3)|list }} {{ range(5, 0, -2)|list }} {{ range(0)|list }}"),
            "[0, 1, 2] [1, 4, 7] [5, 3, 1] []");
  EXPECT_EQ(render("{{ dict(a=1, b=2) }} {{ dict({'x': 1}, y=2) }} {{ namespace(a=1).a }} {{ namespace({'b': 2}).b }}"),
            "{'a': 1, 'b': 2} {'x': 1, 'y': 2} 1 2");
  EXPECT_EQ(render("{% set c = cycler('a', 'b') %}{{ c.next() }}{{ c.next() }}{{ c.next() }}{{ c.current }}"
                   "{% set j = joiner('|') %}{{ j() }}x{{ j() }}y"),
            "abab" "x|y");
}

TEST(JinjaGlobals, StrftimeNowUsesTheGivenClock) {
  EXPECT_EQ(render("{{ strftime_now('%d %b %Y') }}|{{ strftime_now('%B %d, %Y') }}|{{ strftime_now('%Y-%m-%d %A %j %H:%M') }}"),
            "22 Nov 2026|November 22, 2026|2026-11-22 Sunday 326 12:00");
}

TEST(JinjaJson, ValueFromJsonKeepsKeyOrderAndTypes) {
  const Value value = slm::jinja::value_from_json(R"({"z": 1, "a": [true, null, 1.5, "\u00e9\ud83d\ude00"], "m": {}})");
  ASSERT_TRUE(value.is_dict());
  EXPECT_EQ(value.as_dict().entries.front().first.as_string(), "z");
  EXPECT_EQ(value.repr(), "{'z': 1, 'a': [True, None, 1.5, 'é😀'], 'm': {}}");
  EXPECT_EQ(slm::jinja::to_json(value), R"({"z": 1, "a": [true, null, 1.5, "é😀"], "m": {}})");
  EXPECT_TRUE(slm::jinja::value_from_json("12345678901234567890").is_floating());
}

TEST(JinjaJson, MalformedJsonIsAnErrorWithItsOffset) {
  EXPECT_THROW(slm::jinja::value_from_json(R"({"a": })"), slm::Error);
  EXPECT_THROW(slm::jinja::value_from_json("[1, 2"), slm::Error);
  EXPECT_THROW(slm::jinja::value_from_json("{} extra"), slm::Error);
  try {
    slm::jinja::value_from_json("[1, ?]");
    FAIL();
  } catch (const slm::Error& e) {
    EXPECT_STREQ(e.what(), "json: offset 4: unexpected character '?'");
  }
}

TEST(JinjaValue, BuildingValuesInCode) {
  Value message = Value::dict();
  message.set("role", "user");
  message.set("content", "Hi");
  Value list = Value::list();
  list.push_back(message);
  list.push_back(Value(2.5));
  list.push_back(Value(std::int64_t{7}));
  EXPECT_EQ(list.repr(), "[{'role': 'user', 'content': 'Hi'}, 2.5, 7]");
  EXPECT_EQ(Value::none().str(), "None");
  EXPECT_EQ(Value().str(), "");
  EXPECT_FALSE(Value().truthy());
  ASSERT_NE(message.find("role"), nullptr);
  EXPECT_EQ(message.find("role")->as_string(), "user");
  EXPECT_EQ(message.find("missing"), nullptr);
}

}  // namespace
