// The chat page's static files (lib/server/webui/ and the Debian packages' marked, highlight.js
// and DOMPurify), embedded in the binary at build time by lib/cmake/embed_files.cmake, so that the
// page works offline from the one binary.
#pragma once

#include <span>
#include <string_view>

namespace slm::server {

struct WebuiAsset {
  std::string_view path;          // the URL path: "/" for the page, "/webui/..." for the rest
  std::string_view content_type;  // without parameters: every file is UTF-8 text
  std::string_view body;
};

// Every embedded file; defined in the generated <build>/generated/webui_assets.cpp.
std::span<const WebuiAsset> webui_assets();

}  // namespace slm::server
