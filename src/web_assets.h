// The demo page's files (web/), embedded in the binary at build time by cmake/embed_files.cmake,
// so the server needs no files and no network.
#pragma once

#include <cstddef>
#include <vector>

namespace clipxai {

struct WebAsset {
  const char* path;          // relative to web/, e.g. "app.js"
  const char* content_type;  // e.g. "text/javascript; charset=utf-8"
  const unsigned char* data;
  size_t size;
};

const std::vector<WebAsset>& web_assets();

}  // namespace clipxai
