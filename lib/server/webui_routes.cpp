#include "lib/server/webui_routes.hpp"

#include <httplib.h>

#include <string>

#include "lib/server/webui_assets.hpp"

namespace slm::server {

namespace {

// cpp-httplib matches a route as a regular expression: the file's path, its dots escaped.
std::string exact_path_pattern(std::string_view path) {
  std::string pattern;
  for (const char c : path) {
    if (c == '.') pattern += '\\';
    pattern += c;
  }
  return pattern;
}

}  // namespace

void add_webui_routes(httplib::Server& http) {
  for (const WebuiAsset& asset : webui_assets()) {
    http.Get(exact_path_pattern(asset.path), [&asset](const httplib::Request&, httplib::Response& response) {
      response.set_header("Content-Security-Policy", std::string(kWebuiContentSecurityPolicy));
      response.set_header("X-Content-Type-Options", "nosniff");
      response.set_header("Referrer-Policy", "no-referrer");
      response.set_header("Cache-Control", "no-cache");  // a new slm-server binary brings new files
      response.set_content(asset.body.data(), asset.body.size(), std::string(asset.content_type) + "; charset=utf-8");
    });
  }
}

}  // namespace slm::server
