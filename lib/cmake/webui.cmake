# The chat page of slm-server (lib/server/webui/, served at / by lib/server/webui_routes.cpp).
#
# Its own files and three libraries are embedded in slm_server as C++ byte arrays at build time
# (lib/cmake/embed_files.cmake), so the page works offline from the one binary and building slm needs
# no Node.js. The libraries are Debian's packaged copies (tools/install-deps.sh installs them);
# Debian's security team patches them, DOMPurify above all. A path can be given by hand with
# -DSLM_WEBUI_MARKED=... etc. They are files of the build machine, also when cross-compiling.
set(SLM_WEBUI_PACKAGES "libjs-marked libjs-highlight.js node-dompurify")
find_file(SLM_WEBUI_MARKED marked.umd.min.js PATHS /usr/share/javascript/marked NO_DEFAULT_PATH
          NO_CMAKE_FIND_ROOT_PATH DOC "marked (Debian libjs-marked): markdown to HTML")
find_file(SLM_WEBUI_HIGHLIGHT highlight.min.js PATHS /usr/share/javascript/highlight.js NO_DEFAULT_PATH
          NO_CMAKE_FIND_ROOT_PATH DOC "highlight.js (Debian libjs-highlight.js): code highlighting")
find_file(SLM_WEBUI_HIGHLIGHT_CSS github.css PATHS /usr/share/javascript/highlight.js/styles NO_DEFAULT_PATH
          NO_CMAKE_FIND_ROOT_PATH DOC "highlight.js's GitHub colour theme (Debian libjs-highlight.js)")
find_file(SLM_WEBUI_DOMPURIFY purify.min.js PATHS /usr/share/nodejs/dompurify/dist NO_DEFAULT_PATH
          NO_CMAKE_FIND_ROOT_PATH DOC "DOMPurify (Debian node-dompurify): HTML sanitizer")
foreach(library SLM_WEBUI_MARKED SLM_WEBUI_HIGHLIGHT SLM_WEBUI_HIGHLIGHT_CSS SLM_WEBUI_DOMPURIFY)
  if(NOT ${library})
    message(FATAL_ERROR "slm-server's chat page needs ${library} from Debian's packages ${SLM_WEBUI_PACKAGES}: "
                        "run tools/install-deps.sh (or apt-get install ${SLM_WEBUI_PACKAGES}), or give its path "
                        "with -D${library}=FILE")
  endif()
endforeach()

# One line per file: "<url path>|<content type>|<file>". index.html is the page at /; the rest is
# under /webui/.
file(GLOB_RECURSE SLM_WEBUI_FILES CONFIGURE_DEPENDS
     ${CMAKE_CURRENT_SOURCE_DIR}/lib/server/webui/*.html
     ${CMAKE_CURRENT_SOURCE_DIR}/lib/server/webui/*.css
     ${CMAKE_CURRENT_SOURCE_DIR}/lib/server/webui/*.js)
set(manifest "")
foreach(file IN LISTS SLM_WEBUI_FILES)
  file(RELATIVE_PATH relative ${CMAKE_CURRENT_SOURCE_DIR}/lib/server/webui ${file})
  get_filename_component(extension ${file} LAST_EXT)
  if(extension STREQUAL ".html")
    set(type text/html)
  elseif(extension STREQUAL ".css")
    set(type text/css)
  else()
    set(type text/javascript)
  endif()
  if(relative STREQUAL "index.html")
    string(APPEND manifest "/|${type}|${file}\n")
  else()
    string(APPEND manifest "/webui/${relative}|${type}|${file}\n")
  endif()
endforeach()
string(APPEND manifest "/webui/vendor/marked.min.js|text/javascript|${SLM_WEBUI_MARKED}\n")
string(APPEND manifest "/webui/vendor/highlight.min.js|text/javascript|${SLM_WEBUI_HIGHLIGHT}\n")
string(APPEND manifest "/webui/vendor/highlight.css|text/css|${SLM_WEBUI_HIGHLIGHT_CSS}\n")
string(APPEND manifest "/webui/vendor/purify.min.js|text/javascript|${SLM_WEBUI_DOMPURIFY}\n")
set(SLM_WEBUI_MANIFEST ${CMAKE_BINARY_DIR}/generated/webui_manifest.txt)
set(SLM_WEBUI_ASSETS_CPP ${CMAKE_BINARY_DIR}/generated/webui_assets.cpp)
file(CONFIGURE OUTPUT ${SLM_WEBUI_MANIFEST} CONTENT "${manifest}" @ONLY)  # rewritten only when it changes

add_custom_command(
  OUTPUT ${SLM_WEBUI_ASSETS_CPP}
  COMMAND ${CMAKE_COMMAND} -DMANIFEST=${SLM_WEBUI_MANIFEST} -DOUTPUT=${SLM_WEBUI_ASSETS_CPP}
          -P ${CMAKE_CURRENT_SOURCE_DIR}/lib/cmake/embed_files.cmake
  DEPENDS ${SLM_WEBUI_MANIFEST} ${CMAKE_CURRENT_SOURCE_DIR}/lib/cmake/embed_files.cmake ${SLM_WEBUI_FILES}
          ${SLM_WEBUI_MARKED} ${SLM_WEBUI_HIGHLIGHT} ${SLM_WEBUI_HIGHLIGHT_CSS} ${SLM_WEBUI_DOMPURIFY}
  COMMENT "Embedding the chat page's files (lib/server/webui/) in slm-server"
  VERBATIM)
target_sources(slm_server PRIVATE ${SLM_WEBUI_ASSETS_CPP})
