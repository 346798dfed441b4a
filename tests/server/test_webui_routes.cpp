// The chat page's routes (lib/server/webui_routes.cpp): every embedded file is served with its
// type and the strict headers, needs no API key and no model, and nothing else is added: unknown
// paths keep the JSON 404, and --no-webui removes the page. The page itself is tested in a real
// browser by tests/server/webui/browser.mjs.
#include <gtest/gtest.h>

#include <string>

#include "http_test_server.hpp"
#include "lib/server/webui_assets.hpp"
#include "lib/server/webui_routes.hpp"

namespace slm::test {
namespace {

TEST(WebuiRoutes, EveryEmbeddedFileIsServedWithTheStrictHeaders) {
  server::HttpServerOptions options;
  options.api_key = "secret";  // the page loads without it; the API it calls asks for it
  InProcessServer server("", small_scheduler(), options);  // no model: static files need none
  auto client = server.client();
  ASSERT_FALSE(server::webui_assets().empty());
  bool has_page = false;
  for (const server::WebuiAsset& asset : server::webui_assets()) {
    SCOPED_TRACE(std::string(asset.path));
    has_page = has_page || asset.path == "/";
    EXPECT_TRUE(asset.path == "/" || asset.path.starts_with("/webui/"));
    const httplib::Result result = client->Get(std::string(asset.path));
    ASSERT_TRUE(result);
    EXPECT_EQ(result->status, 200);
    EXPECT_EQ(result->body, asset.body);
    EXPECT_EQ(result->get_header_value("Content-Type"), std::string(asset.content_type) + "; charset=utf-8");
    EXPECT_EQ(result->get_header_value("Content-Security-Policy"), server::kWebuiContentSecurityPolicy);
    EXPECT_EQ(result->get_header_value("X-Content-Type-Options"), "nosniff");
    EXPECT_EQ(result->get_header_value("Referrer-Policy"), "no-referrer");
  }
  EXPECT_TRUE(has_page);
  const httplib::Result models = client->Get("/v1/models");
  ASSERT_TRUE(models);
  EXPECT_EQ(models->status, 401);  // the API still wants the key
}

TEST(WebuiRoutes, UnknownPathsKeepTheJson404) {
  InProcessServer server("", small_scheduler());
  auto client = server.client();
  for (const std::string path : {"/webui/", "/webui/nothing.js", "/webui/js/app.jsx", "/webui/js/appXjs", "/index.html"}) {
    SCOPED_TRACE(path);
    const httplib::Result result = client->Get(path);
    ASSERT_TRUE(result);
    EXPECT_EQ(result->status, 404);
    const Json body = Json::parse(result->body);
    EXPECT_TRUE(body["error"]["message"].is_string());
    EXPECT_EQ(result->get_header_value("Content-Security-Policy"), "");
  }
}

TEST(WebuiRoutes, NoWebuiServesNoPage) {
  server::HttpServerOptions options;
  options.webui = false;
  InProcessServer server("", small_scheduler(), options);
  auto client = server.client();
  for (const server::WebuiAsset& asset : server::webui_assets()) {
    const httplib::Result result = client->Get(std::string(asset.path));
    ASSERT_TRUE(result);
    EXPECT_EQ(result->status, 404) << asset.path;
  }
}

}  // namespace
}  // namespace slm::test
