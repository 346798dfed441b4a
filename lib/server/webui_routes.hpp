// The chat page's routes: GET / and GET /webui/<file>, each an embedded file (webui_assets.hpp).
// They need no API key (the page holds no secret and must load to ask for the key); the API
// routes it calls do. Every file is sent with a strict Content-Security-Policy: the model's
// output is untrusted, so even a reply that got past the sanitizer can run no script, load
// nothing from elsewhere and send nothing anywhere but this server.
#pragma once

#include <string_view>

namespace httplib {
class Server;
}  // namespace httplib

namespace slm::server {

// The page's Content-Security-Policy: scripts and styles only from this server (no inline
// script, no eval), fetch() only to this server, images only from it or data: URLs, no plugins,
// no <base>, and no framing by other sites.
inline constexpr std::string_view kWebuiContentSecurityPolicy =
    "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

// Adds one GET route per embedded file. Paths that name no file keep the JSON 404.
void add_webui_routes(httplib::Server& http);

}  // namespace slm::server
