#include "common/markdown_table.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>

namespace slm::tools {

namespace {

// Characters on screen: "±" is two bytes but one column.
size_t display_width(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

}  // namespace

MarkdownTable::MarkdownTable(std::vector<Column> columns, const std::vector<std::vector<std::string>>& rows_to_fit)
    : columns_(std::move(columns)) {
  for (size_t c = 0; c < columns_.size(); ++c) {
    size_t width = std::max(columns_[c].min_width, columns_[c].title.size());
    for (const auto& row : rows_to_fit) width = std::max(width, display_width(row[c]));
    widths_.push_back(width);
  }
}

void MarkdownTable::print_header() const {
  std::vector<std::string> titles;
  for (const Column& column : columns_) titles.push_back(column.title);
  print_row(titles);
  std::string rule = "|";
  for (size_t c = 0; c < columns_.size(); ++c) {
    const bool right = columns_[c].right_aligned;
    rule += " " + std::string(widths_[c] - (right ? 1 : 0), '-') + (right ? ":" : "") + " |";
  }
  fmt::print("{}\n", rule);
}

void MarkdownTable::print_row(const std::vector<std::string>& cells) const {
  std::string line = "|";
  for (size_t c = 0; c < columns_.size(); ++c) {
    const std::string padding(widths_[c] - std::min(widths_[c], display_width(cells[c])), ' ');
    line += " " + (columns_[c].right_aligned ? padding + cells[c] : cells[c] + padding) + " |";
  }
  fmt::print("{}\n", line);
  std::fflush(stdout);
}

}  // namespace slm::tools
