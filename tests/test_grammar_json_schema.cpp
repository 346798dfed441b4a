// JSON Schema -> grammar: for every supported keyword, JSON texts the grammar accepts and
// rejects (byte by byte through the matcher), and the error that names an unsupported keyword.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "slm/error.hpp"
#include "slm/grammar.hpp"
#include "support/grammar_bytes.hpp"

namespace {

using slm::test::byte_vocabulary;

bool accepts(const std::string& schema, const std::string& text) {
  return slm::test::grammar_matches(slm::grammar_from_json_schema(schema), text);
}

std::string conversion_error(const std::string& schema) {
  return slm::test::error_of([&] { slm::grammar_from_json_schema(schema); });
}

TEST(JsonSchemaGrammar, Types) {
  EXPECT_TRUE(accepts(R"({"type":"string"})", R"("a\"b\u00e9")"));
  EXPECT_FALSE(accepts(R"({"type":"string"})", R"("a)"));
  EXPECT_TRUE(accepts(R"({"type":"integer"})", "-120"));
  EXPECT_FALSE(accepts(R"({"type":"integer"})", "012"));
  EXPECT_FALSE(accepts(R"({"type":"integer"})", "1.5"));
  EXPECT_TRUE(accepts(R"({"type":"number"})", "-1.5e+10"));
  EXPECT_TRUE(accepts(R"({"type":"boolean"})", "false"));
  EXPECT_TRUE(accepts(R"({"type":"null"})", "null"));
  EXPECT_TRUE(accepts(R"({"type":["string","null"]})", "null"));
  EXPECT_TRUE(accepts(R"({"type":["string","null"]})", R"("x")"));
  EXPECT_FALSE(accepts(R"({"type":["string","null"]})", "1"));
  EXPECT_TRUE(accepts(R"({})", R"({"a": [1, {"b": null}], "c":"d"})"));
  EXPECT_TRUE(accepts("true", "[true]"));
}

TEST(JsonSchemaGrammar, PropertiesAndRequired) {
  const std::string schema =
      R"({"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"}},"required":["name"],
          "additionalProperties":false})";
  EXPECT_TRUE(accepts(schema, R"({"name":"Bo"})"));
  EXPECT_TRUE(accepts(schema, R"({"name":"Bo", "age":3})"));
  EXPECT_FALSE(accepts(schema, R"({"age":3})"));
  EXPECT_FALSE(accepts(schema, R"({"name":"Bo","x":1})"));
  EXPECT_FALSE(accepts(schema, R"({"name":3})"));
}

TEST(JsonSchemaGrammar, OptionalPropertiesWithoutRequiredOnes) {
  const std::string schema =
      R"({"properties":{"a":{"type":"integer"},"b":{"type":"integer"}},"additionalProperties":false})";
  EXPECT_TRUE(accepts(schema, "{}"));
  EXPECT_TRUE(accepts(schema, R"({"b":2})"));
  EXPECT_TRUE(accepts(schema, R"({"a":1,"b":2})"));
  EXPECT_FALSE(accepts(schema, R"({,"b":2})"));
  EXPECT_FALSE(accepts(schema, R"({"a":1,})"));
}

TEST(JsonSchemaGrammar, AdditionalPropertiesDefaultTrueAndSchema) {
  const std::string open = R"({"type":"object","properties":{"id":{"type":"integer"}},"required":["id"]})";
  EXPECT_TRUE(accepts(open, R"({"id":1,"extra":"x"})"));
  EXPECT_FALSE(accepts(open, R"({"id":1,"id":"x"})"));  // a declared name is no additional property
  EXPECT_TRUE(accepts(open, R"({"id":1,"idx":"x"})"));
  // Names that are prefixes of each other, and a two-byte character: none of them is an
  // additional key, every other key is.
  const std::string prefixes =
      R"({"type":"object","properties":{"ab":{},"a":{},"abc":{},"b":{},"\u00e9":{}},"required":["ab","a","abc","b","\u00e9"]})";
  const std::string declared = "{\"ab\":1,\"a\":1,\"abc\":1,\"b\":1,\"\u00e9\":1";  // keys unescaped
  for (const char* name : {"a", "ab", "abc", "b", "\u00e9"}) EXPECT_FALSE(accepts(prefixes, declared + ",\"" + name + "\":2}")) << name;
  for (const char* name : {"", "abd", "ac", "abcd", "ba", "\u00e9x", "\u00e8", "c"}) EXPECT_TRUE(accepts(prefixes, declared + ",\"" + name + "\":2}")) << name;
  const std::string typed = R"({"type":"object","additionalProperties":{"type":"integer"}})";
  EXPECT_TRUE(accepts(typed, R"({"a":1,"b":2})"));
  EXPECT_FALSE(accepts(typed, R"({"a":"1"})"));
}

TEST(JsonSchemaGrammar, Arrays) {
  const std::string bounded = R"({"type":"array","items":{"type":"integer"},"minItems":1,"maxItems":3})";
  EXPECT_FALSE(accepts(bounded, "[]"));
  EXPECT_TRUE(accepts(bounded, "[1]"));
  EXPECT_TRUE(accepts(bounded, "[1, 2,3]"));
  EXPECT_FALSE(accepts(bounded, "[1,2,3,4]"));
  const std::string tuple = R"({"type":"array","prefixItems":[{"type":"string"},{"type":"integer"}],"items":false})";
  EXPECT_TRUE(accepts(tuple, R"(["a",1])"));
  EXPECT_TRUE(accepts(tuple, R"(["a"])"));
  EXPECT_TRUE(accepts(tuple, "[]"));
  EXPECT_FALSE(accepts(tuple, R"(["a",1,2])"));
  EXPECT_FALSE(accepts(tuple, R"([1])"));
  const std::string tuple_then_items =
      R"({"type":"array","prefixItems":[{"type":"string"}],"items":{"type":"null"},"minItems":2})";
  EXPECT_TRUE(accepts(tuple_then_items, R"(["a",null,null])"));
  EXPECT_FALSE(accepts(tuple_then_items, R"(["a"])"));
}

TEST(JsonSchemaGrammar, EnumAndConst) {
  EXPECT_TRUE(accepts(R"({"enum":["red",1,null,{"a":[true]}]})", R"("red")"));
  EXPECT_TRUE(accepts(R"({"enum":["red",1,null,{"a":[true]}]})", R"({"a":[true]})"));
  EXPECT_FALSE(accepts(R"({"enum":["red",1,null]})", R"("blue")"));
  EXPECT_TRUE(accepts(R"({"const":"a\"b"})", R"("a\"b")"));
  EXPECT_FALSE(accepts(R"({"const":"ab"})", R"("abc")"));
}

TEST(JsonSchemaGrammar, AnyOfOneOfAllOf) {
  EXPECT_TRUE(accepts(R"({"anyOf":[{"type":"integer"},{"type":"string"}]})", "3"));
  EXPECT_FALSE(accepts(R"({"oneOf":[{"type":"integer"},{"type":"string"}]})", "true"));
  // Keywords beside anyOf apply to every branch (llama.cpp drops them).
  const std::string combined =
      R"({"type":"object","properties":{"kind":{"type":"string"}},"required":["kind"],"additionalProperties":false,
          "anyOf":[{"properties":{"a":{"type":"integer"}},"required":["a"]},{"properties":{"b":{"type":"null"}},"required":["b"]}]})";
  EXPECT_TRUE(accepts(combined, R"({"kind":"x","a":1})"));
  EXPECT_TRUE(accepts(combined, R"({"kind":"x","b":null})"));
  EXPECT_FALSE(accepts(combined, R"({"a":1})"));
  const std::string all =
      R"({"allOf":[{"type":"object","properties":{"a":{"type":"integer"}},"required":["a"]},
                   {"properties":{"b":{"type":"string"}},"required":["b"]}],"additionalProperties":false})";
  EXPECT_TRUE(accepts(all, R"({"a":1,"b":"x"})"));
  EXPECT_FALSE(accepts(all, R"({"a":1})"));
  EXPECT_NE(conversion_error(R"({"allOf":[{"type":"string"},{"type":"integer"}]})").find("keyword 'type'"), std::string::npos);
}

TEST(JsonSchemaGrammar, RefsAndRecursion) {
  const std::string tree =
      R"({"$defs":{"node":{"type":"object","properties":{"v":{"type":"integer"},"kids":{"type":"array","items":{"$ref":"#/$defs/node"}}},
          "required":["v"],"additionalProperties":false}},"$ref":"#/$defs/node"})";
  EXPECT_TRUE(accepts(tree, R"({"v":1,"kids":[{"v":2},{"v":3,"kids":[{"v":4}]}]})"));
  EXPECT_FALSE(accepts(tree, R"({"v":1,"kids":[{"w":2}]})"));
  const std::string linked = R"({"type":"object","properties":{"next":{"anyOf":[{"$ref":"#"},{"type":"null"}]}},
                                 "required":["next"],"additionalProperties":false})";
  EXPECT_TRUE(accepts(linked, R"({"next":{"next":null}})"));
  EXPECT_NE(conversion_error(R"({"$ref":"#/$defs/missing"})").find("points nowhere"), std::string::npos);
  EXPECT_NE(conversion_error(R"({"$ref":"http://x/y.json"})").find("'$ref'"), std::string::npos);
}

TEST(JsonSchemaGrammar, StringLengths) {
  const std::string schema = R"({"type":"string","minLength":2,"maxLength":3})";
  EXPECT_FALSE(accepts(schema, R"("a")"));
  EXPECT_TRUE(accepts(schema, R"("ab")"));
  EXPECT_TRUE(accepts(schema, R"("a\né")"));  // lengths count characters, escapes are one
  EXPECT_FALSE(accepts(schema, R"("abcd")"));
}

TEST(JsonSchemaGrammar, IntegerBounds) {
  const std::string schema = R"({"type":"integer","minimum":-15,"maximum":230})";
  for (int v : {-15, -9, -1, 0, 7, 10, 99, 100, 199, 229, 230}) EXPECT_TRUE(accepts(schema, std::to_string(v))) << v;
  for (int v : {-16, -100, 231, 240, 300, 1000}) EXPECT_FALSE(accepts(schema, std::to_string(v))) << v;
  EXPECT_FALSE(accepts(schema, "-0"));
  EXPECT_FALSE(accepts(schema, "007"));
  const std::string lower = R"({"type":"integer","exclusiveMinimum":41})";
  EXPECT_FALSE(accepts(lower, "41"));
  EXPECT_TRUE(accepts(lower, "42"));
  EXPECT_TRUE(accepts(lower, "1000000"));
  const std::string upper = R"({"type":"integer","maximum":-3})";
  EXPECT_TRUE(accepts(upper, "-3"));
  EXPECT_TRUE(accepts(upper, "-3000"));
  EXPECT_FALSE(accepts(upper, "-2"));
  EXPECT_FALSE(accepts(upper, "5"));
}

TEST(JsonSchemaGrammar, Pattern) {
  const std::string schema = R"j({"type":"string","pattern":"^[A-Z]{2}-\\d{3}(x|yz)?$"})j";
  EXPECT_TRUE(accepts(schema, R"("AB-123")"));
  EXPECT_TRUE(accepts(schema, R"("AB-123yz")"));
  EXPECT_FALSE(accepts(schema, R"("AB-12")"));
  EXPECT_FALSE(accepts(schema, R"("ab-123")"));
  EXPECT_TRUE(accepts(R"({"type":"string","pattern":"ab"})", R"("xxabyy")"));  // unanchored: anywhere
  EXPECT_TRUE(accepts(R"({"type":"string","pattern":"^a\\.b$"})", R"("a.b")"));
  EXPECT_FALSE(accepts(R"({"type":"string","pattern":"^a\\.b$"})", R"("axb")"));
  EXPECT_NE(conversion_error(R"j({"type":"string","pattern":"(a)\\1"})j").find("'pattern'"), std::string::npos);
  EXPECT_NE(conversion_error(R"j({"type":"string","pattern":"a(?=b)"})j").find("'pattern'"), std::string::npos);
}

TEST(JsonSchemaGrammar, Formats) {
  EXPECT_TRUE(accepts(R"({"type":"string","format":"date"})", R"("2024-02-28")"));
  EXPECT_FALSE(accepts(R"({"type":"string","format":"date"})", R"("2024-13-01")"));
  EXPECT_TRUE(accepts(R"({"type":"string","format":"time"})", R"("23:59:01Z")"));
  EXPECT_TRUE(accepts(R"({"type":"string","format":"date-time"})", R"("2024-01-02T03:04:05.123+01:00")"));
  EXPECT_TRUE(accepts(R"({"type":"string","format":"uuid"})", R"("123e4567-e89b-12d3-a456-426614174000")"));
  EXPECT_FALSE(accepts(R"({"type":"string","format":"uuid"})", R"("123e4567")"));
  EXPECT_TRUE(accepts(R"({"type":"string","format":"email"})", R"("a.b@example.com")"));
  EXPECT_FALSE(accepts(R"({"type":"string","format":"email"})", R"("ab.example.com")"));
}

TEST(JsonSchemaGrammar, JsonObjectGrammarIsAnyObject) {
  slm::GrammarMatcher matcher(slm::json_object_grammar(), byte_vocabulary());
  EXPECT_FALSE(matcher.accept_bytes("[1]"));
  EXPECT_TRUE(matcher.accept_bytes(R"({"a":{"b":[1,"x"]}})"));
  EXPECT_TRUE(matcher.is_complete());
}

TEST(JsonSchemaGrammar, UnsupportedKeywordsAreNamedNeverDropped) {
  EXPECT_EQ(conversion_error(R"({"type":"object","patternProperties":{"^a":{}}})"),
            "JSON schema: unsupported keyword 'patternProperties'");
  EXPECT_EQ(conversion_error(R"({"type":"array","uniqueItems":true})"), "JSON schema: unsupported keyword 'uniqueItems'");
  EXPECT_EQ(conversion_error(R"({"not":{"type":"string"}})"), "JSON schema: unsupported keyword 'not'");
  EXPECT_EQ(conversion_error(R"({"type":"number","minimum":1.5})"),
            "JSON schema: unsupported keyword 'minimum' for type number (integers only)");
  EXPECT_EQ(conversion_error(R"({"type":"string","format":"ipv4"})"), "JSON schema: unsupported keyword 'format' value 'ipv4'");
  EXPECT_EQ(conversion_error(R"({"properties":{"a":{"multipleOf":2}}})"), "JSON schema: unsupported keyword 'multipleOf'");
  for (const char* keyword : {"if", "dependentRequired", "minProperties", "propertyNames", "contains",
                              "unevaluatedProperties", "additionalItems", "$dynamicRef"})
    EXPECT_EQ(conversion_error(std::string(R"({"type":"object",")") + keyword + R"(":{}})"),
              std::string("JSON schema: unsupported keyword '") + keyword + "'");
  EXPECT_EQ(conversion_error("false"), "JSON schema: the schema 'false' matches nothing");
  EXPECT_NE(conversion_error("{").find("not valid JSON"), std::string::npos);
  EXPECT_NE(conversion_error(std::string(5000, '[') + std::string(5000, ']')).find("nested deeper"), std::string::npos);
}

// Keywords outside JSON Schema's vocabulary constrain nothing (the specification makes unknown
// keywords annotations): a schema with them is the schema without them, also beside $ref, anyOf
// and inside allOf, where they differ between branches.
TEST(JsonSchemaGrammar, KeywordsOutsideJsonSchemaAreAnnotations) {
  const std::string plain =
      R"({"type":"object","properties":{"a":{"type":"integer"}},"required":["a"],"additionalProperties":false})";
  const std::string extended =
      R"({"id":"http://x/s.json","self":{"vendor":"v"},"x-kubernetes-preserve-unknown-fields":true,"type":"object",
          "properties":{"a":{"type":"integer","_format":"int32","x-order":1}},"required":["a"],"additionalProperties":false})";
  EXPECT_EQ(slm::json_schema_to_gbnf(extended), slm::json_schema_to_gbnf(plain));
  for (const char* text : {R"({"a":1})", R"({"a":"x"})", R"({})", R"({"a":1,"b":2})"})
    EXPECT_EQ(accepts(extended, text), accepts(plain, text)) << text;

  const std::string beside_ref = R"({"$defs":{"n":{"type":"integer"}},"$ref":"#/$defs/n","x-note":"id"})";
  EXPECT_TRUE(accepts(beside_ref, "3"));
  EXPECT_FALSE(accepts(beside_ref, R"("3")"));
  const std::string beside_any_of = R"({"anyOf":[{"type":"integer"},{"type":"null"}],"x-nullable":true})";
  EXPECT_TRUE(accepts(beside_any_of, "null"));
  EXPECT_FALSE(accepts(beside_any_of, "true"));
  const std::string in_all_of = R"({"allOf":[{"type":"integer","x-a":1},{"minimum":0,"x-a":2}]})";
  EXPECT_TRUE(accepts(in_all_of, "7"));
  EXPECT_FALSE(accepts(in_all_of, "-7"));
}

}  // namespace
