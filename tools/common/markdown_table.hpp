// A markdown table as llama-bench draws it: each column at least its minimum width, left- or
// right-aligned, with ":" marking right alignment in the rule line. Rows may be printed as they
// come; a cell wider than its column widens only its own row, as in llama-bench.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace slm::tools {

struct Column {
  std::string title;
  size_t min_width;
  bool right_aligned;
};

class MarkdownTable {
 public:
  // Widths: each column's minimum and title, widened to fit `rows_to_fit` (if known up front).
  explicit MarkdownTable(std::vector<Column> columns, const std::vector<std::vector<std::string>>& rows_to_fit = {});

  // The titles and the rule line, on stdout.
  void print_header() const;
  // One row on stdout, flushed at once.
  void print_row(const std::vector<std::string>& cells) const;

 private:
  std::vector<Column> columns_;
  std::vector<size_t> widths_;
};

}  // namespace slm::tools
