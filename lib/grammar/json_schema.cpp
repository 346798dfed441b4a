// JSON Schema -> GBNF. Every schema node becomes a rule; $ref targets get one named rule each,
// so recursive schemas give recursive rules. Keywords that cannot be honoured are errors that
// name them, never silently dropped.
//
// The output is compact JSON (no whitespace except one optional space after ':' and ','),
// numbers have at most 16 integer digits, 16 fraction digits and 3 exponent digits: a subset of
// what the schema allows, so that a model (even a random one) reaches the end of a value soon.
// oneOf is matched as anyOf (exact when its branches are disjoint, the usual case).
#include <fmt/format.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "lib/grammar/json_schema_rules.hpp"
#include "slm/error.hpp"
#include "slm/grammar.hpp"

namespace slm {

namespace grammar {

namespace {

using json = nlohmann::ordered_json;

const std::set<std::string> annotation_keywords = {
    "title", "description", "examples", "default", "$schema", "$id", "$comment", "deprecated",
    "readOnly", "writeOnly", "$anchor", "contentMediaType", "contentEncoding", "strict", "name"};
const std::set<std::string> supported_keywords = {
    "type", "properties", "required", "additionalProperties", "items", "prefixItems", "minItems",
    "maxItems", "enum", "const", "anyOf", "oneOf", "allOf", "$ref", "$defs", "definitions",
    "minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "pattern", "format"};
// JSON Schema's keywords (drafts 3 to 2020-12) that constrain an instance and are not supported:
// each is refused by name. A keyword outside JSON Schema's vocabulary (an OpenAPI or Kubernetes
// extension such as x-kubernetes-*, a tool's own _format or self, draft 4's id) constrains
// nothing and is an annotation, as the specification says unknown keywords are (2020-12 core,
// section 4.3.1); refusing it refused 9 of 20 Kubernetes and all 20 Snowplow schemas of
// JSONSchemaBench. draft 4's id names a schema for non-local $refs, which are refused anyway.
const std::set<std::string> unsupported_keywords = {
    "not", "if", "then", "else", "dependentSchemas", "dependentRequired", "dependencies",
    "patternProperties", "propertyNames", "unevaluatedProperties", "unevaluatedItems", "contains",
    "minContains", "maxContains", "minProperties", "maxProperties", "multipleOf", "uniqueItems",
    "additionalItems", "$dynamicRef", "$recursiveRef", "contentSchema", "$vocabulary", "disallow",
    "extends", "divisibleBy"};

bool is_annotation(const std::string& key) {
  return annotation_keywords.count(key) || (!supported_keywords.count(key) && !unsupported_keywords.count(key));
}

// The schema without its annotations: what is left constrains the instance.
json without_annotations(json schema) {
  for (auto it = schema.begin(); it != schema.end();) it = is_annotation(it.key()) ? schema.erase(it) : std::next(it);
  return schema;
}

}  // namespace

// Comparing, copying and printing JSON recurse: refuse documents nested deeper than `limit`
// first (checked without recursion).
void check_json_depth(const json& document, int limit) {
  std::vector<std::pair<const json*, int>> work{{&document, 0}};
  while (!work.empty()) {
    auto [node, depth] = work.back();
    work.pop_back();
    if (depth > limit) throw Error(fmt::format("JSON schema: nested deeper than {}", limit));
    if (node->is_structured())
      for (const json& child : *node) work.push_back({&child, depth + 1});
  }
}

namespace {

class SchemaConverter {
 public:
  SchemaConverter(const json& root, const GrammarLimits& limits) : root_(root), limits_(limits) {}

  std::string convert() {
    const std::string root_rule = visit(root_, "root", 0);
    if (root_rule != "root") define("root", root_rule);
    primitive("sp");
    std::string out;
    for (const auto& [name, body] : rule_order_) out += fmt::format("{} ::= {}\n", name, body);
    return out;
  }

 private:
  [[noreturn]] static void fail(const std::string& message) { throw Error("JSON schema: " + message); }

  // Defines a rule (once) and returns its name.
  std::string define(const std::string& name, std::string body) {
    if (defined_.insert(name).second) {
      taken_.insert(name);
      rule_order_.push_back({name, std::move(body)});
    }
    return name;
  }
  std::string fresh(const std::string& hint) {
    std::string base = hint;
    for (char& c : base)
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-')) c = '-';
    if (base.empty() || base.size() > 40) base = "r";
    std::string name = base;
    // base-1, base-2, ...: the numbers below next_suffix_[base] are all taken (names are never freed),
    // so the search resumes there instead of from 1 (a schema with thousands of "properties" hints).
    int& next = next_suffix_[base];
    if (next == 0) next = 1;
    while (taken_.count(name)) name = fmt::format("{}-{}", base, next++);
    taken_.insert(name);
    return name;
  }
  std::string primitive(const std::string& name) {
    for (const auto& [rule, body] : primitive_rules())
      if (rule == name) {
        if (defined_.count(name)) return name;
        define(rule, body);  // before its dependencies: value and object refer to each other
        for (const std::string& dependency : primitive_dependencies(name)) primitive(dependency);
        return name;
      }
    fail("internal: unknown primitive " + name);
  }

  void check_keywords(const json& schema) {
    for (const auto& [key, value] : schema.items()) {
      if (key == "uniqueItems" && value == false) continue;
      if (unsupported_keywords.count(key)) fail(fmt::format("unsupported keyword '{}'", key));
    }
  }

  const json& resolve(const std::string& ref) {
    if (ref == "#") return root_;
    if (!ref.starts_with("#/")) fail(fmt::format("unsupported keyword '$ref' to '{}' (only local references #/...)", ref));
    const json* node = &root_;
    size_t at = 2;
    while (at <= ref.size()) {
      size_t slash = ref.find('/', at);
      if (slash == std::string::npos) slash = ref.size();
      std::string part = ref.substr(at, slash - at);
      for (size_t p; (p = part.find("~1")) != std::string::npos;) part.replace(p, 2, "/");
      for (size_t p; (p = part.find("~0")) != std::string::npos;) part.replace(p, 2, "~");
      if (node->is_object() && node->contains(part)) node = &(*node)[part];
      else if (node->is_array() && !part.empty() && part.find_first_not_of("0123456789") == std::string::npos &&
               std::stoull(part) < node->size())
        node = &(*node)[std::stoull(part)];
      else fail(fmt::format("'$ref' '{}' points nowhere", ref));
      at = slash + 1;
    }
    return *node;
  }

  // allOf: the keywords of every branch in one schema; properties merged, required united.
  json merge_schemas(const json& a, const json& b, int depth) {
    const json left = inline_ref(a, depth), right = inline_ref(b, depth);
    if (!left.is_object() || !right.is_object()) fail("'allOf' of a boolean schema");
    json merged = left;
    for (const auto& [key, value] : right.items()) {
      if (!merged.contains(key) || is_annotation(key)) {
        merged[key] = value;
      } else if (key == "properties") {
        for (const auto& [name, property] : value.items()) {
          if (merged[key].contains(name) && merged[key][name] != property)
            fail(fmt::format("'allOf' cannot merge two different schemas of property '{}'", name));
          merged[key][name] = property;
        }
      } else if (key == "required") {
        for (const auto& name : value)
          if (std::find(merged[key].begin(), merged[key].end(), name) == merged[key].end()) merged[key].push_back(name);
      } else if (merged[key] != value) {
        fail(fmt::format("'allOf' cannot merge two different values of keyword '{}'", key));
      }
    }
    return merged;
  }
  json inline_ref(const json& schema, int depth) {
    if (schema.is_object() && schema.contains("$ref")) {
      if (depth > limits_.max_nesting) fail("'$ref' chain too deep");
      json copy = schema;
      copy.erase("$ref");
      const json& target = resolve(schema["$ref"].get<std::string>());
      return copy.empty() ? inline_ref(target, depth + 1) : merge_schemas(target, copy, depth + 1);
    }
    return schema;
  }

  std::string visit(const json& schema, const std::string& hint, int depth) {
    if (depth > limits_.max_nesting) fail(fmt::format("nested deeper than {}", limits_.max_nesting));
    if (schema.is_boolean()) {
      if (!schema.get<bool>()) fail("the schema 'false' matches nothing");
      return primitive("value");
    }
    if (!schema.is_object()) fail(fmt::format("a schema must be an object or a boolean, not {}", schema.type_name()));
    check_keywords(schema);

    if (schema.contains("$ref")) {
      const std::string ref = schema["$ref"].is_string() ? schema["$ref"].get<std::string>() : "";
      if (ref.empty()) fail("'$ref' must be a string");
      json rest = without_annotations(schema);
      rest.erase("$ref");
      rest.erase("$defs");
      rest.erase("definitions");
      if (rest.empty()) {
        const auto found = ref_rules_.find(ref);
        if (found != ref_rules_.end()) return found->second;
        const std::string name = fresh("ref" + ref.substr(ref.rfind('/') + 1));
        ref_rules_[ref] = name;
        define(name, visit(resolve(ref), name, depth + 1));
        return name;
      }
      return visit(merge_schemas(resolve(ref), rest, depth), hint, depth + 1);
    }
    if (schema.contains("allOf")) {
      if (!schema["allOf"].is_array() || schema["allOf"].empty()) fail("'allOf' must be a non-empty array");
      json merged = schema;
      merged.erase("allOf");
      for (const json& branch : schema["allOf"]) merged = merge_schemas(merged, branch, depth);
      return visit(merged, hint, depth + 1);
    }
    for (const char* key : {"anyOf", "oneOf"}) {
      if (!schema.contains(key)) continue;
      if (!schema[key].is_array() || schema[key].empty()) fail(fmt::format("'{}' must be a non-empty array", key));
      json rest = without_annotations(schema);
      rest.erase(key);
      std::string body;
      int i = 0;
      for (const json& branch : schema[key]) {
        // Keywords beside anyOf apply to every branch.
        const json full = rest.empty() ? branch : merge_schemas(rest, branch, depth);
        body += (body.empty() ? "" : " | ") + visit(full, fmt::format("{}-{}", hint, i++), depth + 1);
      }
      return define(fresh(hint), body);
    }
    if (schema.contains("const")) return define(fresh(hint), json_literal(schema["const"]));
    if (schema.contains("enum")) {
      if (!schema["enum"].is_array() || schema["enum"].empty()) fail("'enum' must be a non-empty array");
      std::string body;
      for (const json& value : schema["enum"]) body += (body.empty() ? "" : " | ") + json_literal(value);
      return define(fresh(hint), body);
    }

    std::vector<std::string> types;
    if (schema.contains("type")) {
      const json& type = schema["type"];
      if (type.is_string()) types.push_back(type.get<std::string>());
      else if (type.is_array())
        for (const json& t : type) {
          if (!t.is_string()) fail("'type' must name types");
          types.push_back(t.get<std::string>());
        }
      else fail("'type' must be a string or an array of strings");
      if (types.empty()) fail("'type' is an empty array");
    } else {
      types = inferred_types(schema);
    }
    std::string body;
    for (const std::string& type : types)
      body += (body.empty() ? "" : " | ") + visit_type(schema, type, hint, depth);
    return types.size() == 1 ? body : define(fresh(hint), body);
  }

  // Without 'type', keywords of one kind say what the value is; none at all: any value.
  static std::vector<std::string> inferred_types(const json& schema) {
    for (const char* key : {"properties", "required", "additionalProperties"})
      if (schema.contains(key)) return {"object"};
    for (const char* key : {"items", "prefixItems", "minItems", "maxItems"})
      if (schema.contains(key)) return {"array"};
    for (const char* key : {"minLength", "maxLength", "pattern", "format"})
      if (schema.contains(key)) return {"string"};
    for (const char* key : {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"})
      if (schema.contains(key)) return {"integer"};
    return {"any"};
  }

  std::string visit_type(const json& schema, const std::string& type, const std::string& hint, int depth) {
    if (type == "any") return primitive("value");
    if (type == "null") return primitive("null");
    if (type == "boolean") return primitive("boolean");
    if (type == "string") return string_rule(schema, hint);
    if (type == "integer") return integer_rule(schema, hint);
    if (type == "number") {
      for (const char* key : {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"})
        if (schema.contains(key)) fail(fmt::format("unsupported keyword '{}' for type number (integers only)", key));
      return primitive("number");
    }
    if (type == "object") return object_rule(schema, hint, depth);
    if (type == "array") return array_rule(schema, hint, depth);
    fail(fmt::format("unknown type '{}'", type));
  }

  static int64_t count_keyword(const json& schema, const char* key, int64_t fallback) {
    if (!schema.contains(key)) return fallback;
    const json& v = schema[key];
    if (!v.is_number_integer() || v.get<int64_t>() < 0) fail(fmt::format("'{}' must be a non-negative integer", key));
    return v.get<int64_t>();
  }

  std::string string_rule(const json& schema, const std::string& hint) {
    if (schema.contains("format")) {
      if (!schema["format"].is_string()) fail("'format' must be a string");
      const std::string format = schema["format"].get<std::string>();
      if (format != "date" && format != "time" && format != "date-time" && format != "uuid" && format != "email")
        fail(fmt::format("unsupported keyword 'format' value '{}'", format));
      if (schema.contains("pattern") || schema.contains("minLength") || schema.contains("maxLength"))
        fail("'format' together with 'pattern', 'minLength' or 'maxLength'");
      return define(fresh(hint), "\"\\\"\" " + primitive("format-" + format) + " \"\\\"\"");
    }
    if (schema.contains("pattern")) {
      if (!schema["pattern"].is_string()) fail("'pattern' must be a string");
      if (schema.contains("minLength") || schema.contains("maxLength")) fail("'pattern' together with 'minLength' or 'maxLength'");
      primitive("char");
      return define(fresh(hint), "\"\\\"\" " + regex_to_gbnf(schema["pattern"].get<std::string>(), limits_) + " \"\\\"\"");
    }
    const int64_t min = count_keyword(schema, "minLength", 0);
    const int64_t max = count_keyword(schema, "maxLength", -1);
    if (min == 0 && max < 0) return primitive("string");
    if (max >= 0 && max < min) fail("'maxLength' is below 'minLength'");
    if (std::max(min, max) > limits_.max_repetition)
      fail(fmt::format("'minLength'/'maxLength' beyond the limit of {}", limits_.max_repetition));
    primitive("char");
    return define(fresh(hint), max < 0 ? fmt::format("\"\\\"\" char{{{},}} \"\\\"\"", min)
                                       : fmt::format("\"\\\"\" char{{{},{}}} \"\\\"\"", min, max));
  }

  std::string integer_rule(const json& schema, const std::string& hint) {
    std::optional<int64_t> lo, hi;
    const auto bound = [&](const char* key) -> std::optional<int64_t> {
      if (!schema.contains(key)) return std::nullopt;
      const json& v = schema[key];
      if (!v.is_number()) fail(fmt::format("'{}' must be a number", key));
      const double d = v.get<double>();
      if (!(d > -1e15 && d < 1e15)) fail(fmt::format("'{}' beyond +-1e15", key));
      return int64_t(d);
    };
    if (auto v = bound("minimum")) lo = schema["minimum"].get<double>() > double(*v) ? *v + 1 : *v;
    if (auto v = bound("exclusiveMinimum")) lo = std::max(lo.value_or(INT64_MIN), schema["exclusiveMinimum"].get<double>() >= double(*v) ? *v + 1 : *v);
    if (auto v = bound("maximum")) hi = schema["maximum"].get<double>() < double(*v) ? *v - 1 : *v;
    if (auto v = bound("exclusiveMaximum")) hi = std::min(hi.value_or(INT64_MAX), schema["exclusiveMaximum"].get<double>() <= double(*v) ? *v - 1 : *v);
    if (!lo && !hi) return primitive("integer");
    if (lo && hi && *lo > *hi) fail("'minimum' is above 'maximum'");
    return define(fresh(hint), integer_range_gbnf(lo, hi));
  }

  // The key/value pairs of an object: required ones in the schema's order, then the optional
  // ones in order, then any additional properties.
  std::string object_rule(const json& schema, const std::string& hint, int depth) {
    std::vector<std::pair<std::string, std::string>> required, optional;
    std::set<std::string> required_names;
    if (schema.contains("required")) {
      if (!schema["required"].is_array()) fail("'required' must be an array");
      for (const json& name : schema["required"]) {
        if (!name.is_string()) fail("'required' must list strings");
        required_names.insert(name.get<std::string>());
      }
    }
    std::vector<std::string> names;
    if (schema.contains("properties")) {
      if (!schema["properties"].is_object()) fail("'properties' must be an object");
      for (const auto& [name, property] : schema["properties"].items()) {
        const std::string value_rule = visit(property, hint + "-" + name, depth + 1);
        const std::string pair = fmt::format("{} \":\" sp {}", json_literal(json(name)), value_rule);
        (required_names.count(name) ? required : optional).push_back({name, pair});
        names.push_back(name);
      }
    }
    for (const std::string& name : required_names)
      if (std::find(names.begin(), names.end(), name) == names.end())
        required.push_back({name, fmt::format("{} \":\" sp {}", json_literal(json(name)), primitive("value"))});

    std::string additional;  // a rule for one additional key/value pair, or "" when none are allowed
    static const json any_value = true;
    const json& additional_schema = schema.contains("additionalProperties") ? schema["additionalProperties"] : any_value;
    if (!(additional_schema.is_boolean() && !additional_schema.get<bool>())) {
      const std::string value_rule = additional_schema.is_boolean() ? primitive("value")
                                                                    : visit(additional_schema, hint + "-additional", depth + 1);
      additional = define(fresh(hint + "-additional-kv"),
                          fmt::format("{} \":\" sp {}", key_not_in(names, hint), value_rule));
    }
    std::vector<std::string> pairs;
    for (const auto& r : required) pairs.push_back(define(fresh(hint + "-" + r.first + "-kv"), r.second));
    const size_t n_required = pairs.size();
    for (const auto& o : optional) pairs.push_back(define(fresh(hint + "-" + o.first + "-kv"), o.second));

    // tail(i): the pairs from i on, each after a comma, optional ones optional.
    std::string tail = additional.empty() ? "" : fmt::format("(\",\" sp {})*", additional);
    if (n_required > 0) {
      std::string body = "\"{\" " + pairs[0];
      for (size_t i = 1; i < pairs.size(); ++i)
        body += i < n_required ? fmt::format(" \",\" sp {}", pairs[i]) : fmt::format(" (\",\" sp {})?", pairs[i]);
      return define(fresh(hint), body + " " + tail + " \"}\"");
    }
    // No required pair: the first pair present has no comma before it.
    std::string rest = tail;  // what may follow the last pair
    std::string first_from = additional.empty() ? "" : fmt::format("{} {}", additional, tail);
    for (size_t i = pairs.size(); i-- > 0;) {
      const std::string after = define(fresh(hint + "-after"), rest.empty() ? "\"\"" : rest);
      first_from = define(fresh(hint + "-from"),
                          first_from.empty() ? fmt::format("{} {}", pairs[i], after)
                                             : fmt::format("{} {} | {}", pairs[i], after, first_from));
      rest = fmt::format("(\",\" sp {})? {}", pairs[i], after);
    }
    return define(fresh(hint), first_from.empty() ? "\"{}\"" : fmt::format("\"{{\" ({})? \"}}\"", first_from));
  }

  // A JSON string that is none of `names`, written without escapes (so that no escaped form of
  // a name slips through): a trie of the names, where leaving it makes any key.
  std::string key_not_in(const std::vector<std::string>& names, const std::string& hint) {
    primitive("key-char");
    if (names.empty()) return define("free-key", "\"\\\"\" key-char* \"\\\"\"");
    const std::string free_tail = define("free-key-tail", "key-char* \"\\\"\"");
    std::vector<std::string> sorted = names;
    std::sort(sorted.begin(), sorted.end());
    return "\"\\\"\" " + key_trie(sorted, 0, sorted.size(), 0, hint, free_tail);
  }
  // The trie node of the prefix of length `depth` shared by the sorted names [begin, end): its
  // children are runs of names with the same next character, in byte order.
  std::string key_trie(const std::vector<std::string>& names, size_t begin, size_t end, size_t depth, const std::string& hint,
                       const std::string& free_tail) {
    size_t first_longer = begin;  // the prefix itself sorts first
    while (first_longer < end && names[first_longer].size() == depth) ++first_longer;
    std::string body = first_longer > begin ? "" : "\"\\\"\"";
    std::string excluded;
    for (size_t i = first_longer; i < end;) {
      const unsigned char c = static_cast<unsigned char>(names[i][depth]);
      const size_t len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
      const std::string ch = names[i].substr(depth, len);
      size_t run_end = i + 1;
      while (run_end < end && names[run_end].compare(depth, len, ch) == 0) ++run_end;
      // Names with characters JSON escapes cannot be written by an unescaped key anyway.
      if (!(ch.size() == 1 && (ch[0] == '"' || ch[0] == '\\' || static_cast<unsigned char>(ch[0]) < 0x20))) {
        body += (body.empty() ? "" : " | ") + gbnf_literal(ch) + " " + key_trie(names, i, run_end, depth + ch.size(), hint, free_tail);
        excluded += gbnf_class_char(ch);
      }
      i = run_end;
    }
    body += (body.empty() ? "" : " | ") + fmt::format("[^\"\\\\\\x00-\\x1F{}] {}", excluded, free_tail);
    return define(fresh(hint + "-key"), std::move(body));
  }

  std::string array_rule(const json& schema, const std::string& hint, int depth) {
    std::vector<std::string> prefix;
    if (schema.contains("prefixItems")) {
      if (!schema["prefixItems"].is_array()) fail("'prefixItems' must be an array");
      int i = 0;
      for (const json& item : schema["prefixItems"]) prefix.push_back(visit(item, fmt::format("{}-{}", hint, i++), depth + 1));
    }
    std::string item;  // "" when no more items are allowed
    const json items = schema.contains("items") ? schema["items"] : json(true);
    if (!(items.is_boolean() && !items.get<bool>())) item = visit(items, hint + "-item", depth + 1);
    const int64_t min = count_keyword(schema, "minItems", 0);
    int64_t max = count_keyword(schema, "maxItems", -1);
    if (item.empty()) max = max < 0 ? int64_t(prefix.size()) : std::min(max, int64_t(prefix.size()));
    if (max >= 0 && max < min) fail("'maxItems' is below 'minItems' (or more items are required than 'items: false' allows)");
    if (std::max(min, max) > limits_.max_repetition) fail(fmt::format("'minItems'/'maxItems' beyond the limit of {}", limits_.max_repetition));

    const auto slot = [&](int64_t i) { return size_t(i) < prefix.size() ? prefix[size_t(i)] : item; };
    // The optional items after `from`: prefix slots one by one, then the repeated item.
    const auto optional_tail = [&](int64_t from) {
      std::string tail;
      int64_t open = 0;
      int64_t i = from;
      for (; i < int64_t(prefix.size()) && (max < 0 || i < max); ++i, ++open) tail += fmt::format(" (\",\" sp {}", slot(i));
      if (!item.empty() && (max < 0 || i < max))
        tail += max < 0 ? fmt::format(" (\",\" sp {})*", item) : fmt::format(" (\",\" sp {}){{0,{}}}", item, max - i);
      for (int64_t k = 0; k < open; ++k) tail += ")?";
      return tail;
    };
    std::string body;
    if (min > 0) {
      body = "\"[\" " + slot(0);
      for (int64_t i = 1; i < min; ++i) body += " \",\" sp " + slot(i);
      body += optional_tail(min) + " \"]\"";
    } else if (max == 0) {
      body = "\"[]\"";
    } else {
      body = fmt::format("\"[\" ({}{})? \"]\"", slot(0), optional_tail(1));
    }
    return define(fresh(hint), body);
  }

  const json& root_;
  const GrammarLimits& limits_;
  std::unordered_set<std::string> defined_, taken_;  // rules defined; names given out (defined or not yet)
  std::vector<std::pair<std::string, std::string>> rule_order_;
  std::unordered_map<std::string, int> next_suffix_;
  std::map<std::string, std::string> ref_rules_;
};

}  // namespace

}  // namespace grammar

std::string json_schema_to_gbnf(std::string_view schema_json, const GrammarLimits& limits) {
  if (schema_json.size() > limits.max_text_bytes) throw Error("JSON schema: the text is larger than the limit");
  grammar::json schema;
  try {
    schema = grammar::json::parse(schema_json.begin(), schema_json.end());
  } catch (const grammar::json::exception& e) {
    throw Error(fmt::format("JSON schema: not valid JSON: {}", e.what()));
  }
  grammar::check_json_depth(schema, limits.max_nesting * 4);
  try {
    return grammar::SchemaConverter(schema, limits).convert();
  } catch (const grammar::json::exception& e) {
    throw Error(fmt::format("JSON schema: {}", e.what()));
  }
}

Grammar grammar_from_json_schema(std::string_view schema_json, const GrammarLimits& limits) {
  Grammar g = compile_gbnf(json_schema_to_gbnf(schema_json, limits), limits);
  return g;
}

Grammar json_object_grammar() {
  static const Grammar grammar = grammar_from_json_schema(R"({"type": "object"})");
  return grammar;
}

}  // namespace slm
