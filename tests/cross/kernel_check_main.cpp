// The kernel checks of tests/support/kernel_checks.hpp and recurrent_kernel_checks.hpp without
// GoogleTest, for the AArch64 cross build that run-neon-tests.sh runs under qemu. Prints a line
// per group of checks and a closing "N passed, M failed"; exits non-zero if a check failed or if the NEON kernels
// were not checked (or, with SLM_ISA unset, are not the ones the dispatcher chose).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>

#include "kernels/matmul.hpp"
#include "kernels/matmul_isa.hpp"
#include "support/attention_kernel_checks.hpp"
#include "support/kernel_checks.hpp"
#include "support/recurrent_kernel_checks.hpp"

namespace {

using slm::kernels::checks::CheckReport;

int64_t total_passed = 0, total_failed = 0;

void print_and_count(const std::string& name, const CheckReport& report) {
  std::printf("%-10s %lld passed, %lld failed\n", name.c_str(), static_cast<long long>(report.passed),
              static_cast<long long>(report.failed));
  std::fputs(report.summary().c_str(), stdout);
  total_passed += report.passed;
  total_failed += report.failed;
}

}  // namespace

int main() {
  using namespace slm::kernels;
  CheckReport choice;
  checks::check_isa_choice(choice);
  print_and_count("ISA choice", choice);

  bool neon_checked = false;
  for (Isa isa : checks::available_isas()) {
    CheckReport report;
    checks::check_every_kernel(isa, report);
    print_and_count(isa_name(isa), report);
    CheckReport recurrent;  // short_conv, delta_rule, gated_rms_norm
    checks::check_recurrent_kernels(isa, recurrent);
    print_and_count(std::string(isa_name(isa)) + " recurrent", recurrent);
    CheckReport attention;  // attend_head, attend_queries
    checks::check_attention(isa, attention);
    print_and_count(std::string(isa_name(isa)) + " attention", attention);
    neon_checked |= isa == Isa::Neon && report.passed > 0 && recurrent.passed > 0 && attention.passed > 0;
  }

  CheckReport neon_exercised;
  neon_exercised.expect(neon_checked, "the NEON kernels are not available in this build, so they were not checked");
  if (!std::getenv("SLM_ISA"))
    neon_exercised.expect(active_isa() == Isa::Neon,
                          std::string("the dispatcher chose ") + isa_name(active_isa()) + ", not neon");
  // The recurrent and attention kernels give the reference's bits or nearly, so only this shows NEON's ran.
  if (isa_available(Isa::Neon)) {
    neon_exercised.expect(short_conv_kernel(Isa::Neon) == &neon::gated_short_conv_neon, "short_conv: not the NEON kernel");
    neon_exercised.expect(delta_rule_kernel(Isa::Neon) == &neon::gated_delta_rule_neon, "delta_rule: not the NEON kernel");
    neon_exercised.expect(gated_rms_norm_kernel(Isa::Neon) == &neon::gated_rms_norm_neon,
                          "gated_rms_norm: not the NEON kernel");
    neon_exercised.expect(kernels_for(Isa::Neon).attend_head == &neon::attend_head_neon, "attend_head: not the NEON kernel");
    neon_exercised.expect(kernels_for(Isa::Neon).attend_queries == &neon::attend_queries_neon,
                          "attend_queries: not the NEON kernel");
    // The 8-row interleaved layout is x86's (its kernels widen bytes in AVX2 lanes): NEON reads
    // every format's rows as stored, Q2_K and Q3_K as Q4_K and Q5_K.
    for (slm::GgmlType type : checks::kWeightFormats)
      neon_exercised.expect(!kernels_for(Isa::Neon).interleaves(type),
                            std::string(slm::ggml_type_info(type).name) + ": NEON must read its rows, not interleaved tiles");
  }
  print_and_count("NEON used", neon_exercised);

  // The dotprod integer kernels take Q4_0, Q5_0, Q8_0, Q4_K, Q5_K and Q6_K where the CPU has
  // the instructions; run-neon-tests.sh runs qemu with a CPU that has them and says so in
  // SLM_EXPECT_DOTPROD.
  if (isa_available(Isa::Neon)) {
    CheckReport dotprod;
    std::string used;
    for (slm::GgmlType type : {slm::GgmlType::Q4_0, slm::GgmlType::Q5_0, slm::GgmlType::Q8_0, slm::GgmlType::Q4_K,
                               slm::GgmlType::Q5_K, slm::GgmlType::Q6_K}) {
      const bool integer = kernels_for(Isa::Neon).activation_bits(type) > 0;
      if (integer) used += std::string(used.empty() ? "" : " ") + std::string(slm::ggml_type_info(type).name);
      if (std::getenv("SLM_EXPECT_DOTPROD"))
        dotprod.expect(integer, std::string("SLM_EXPECT_DOTPROD is set but NEON did not take the dotprod path for ") +
                                    std::string(slm::ggml_type_info(type).name));
    }
    std::printf("NEON integer (dotprod) kernels: %s\n", used.empty() ? "not used (no dotprod)" : used.c_str());
    print_and_count("dotprod", dotprod);
  }

  // Where the CPU has i8mm (run-neon-tests.sh says so in SLM_EXPECT_I8MM), the smmla prompt
  // kernel, which matmul_rows takes, gives the dotprod kernel's bits on every row range and
  // token count (odd counts end with one token through sdot).
  if (isa_available(Isa::Neon)) {
    CheckReport i8mm;
    std::string used;
    for (slm::GgmlType type : {slm::GgmlType::Q4_0, slm::GgmlType::Q5_0, slm::GgmlType::Q8_0, slm::GgmlType::Q4_K,
                               slm::GgmlType::Q5_K, slm::GgmlType::Q6_K}) {
      const std::string name(slm::ggml_type_info(type).name);
      const neon::IntegerRowsKernel smmla = neon::i8mm_integer_kernel(type), sdot = neon::dotprod_integer_kernel(type);
      if (std::getenv("SLM_EXPECT_I8MM"))
        i8mm.expect(smmla != nullptr, "SLM_EXPECT_I8MM is set but " + name + " has no i8mm kernel");
      if (!smmla || !sdot) continue;
      used += (used.empty() ? "" : " ") + name;
      constexpr int64_t kRows = 22, kTokens = 37;
      const int64_t n_in = 2 * slm::ggml_type_info(type).block_size;
      const checks::RandomMatrix m = checks::random_matrix(type, kRows, n_in, 8000);
      const std::vector<float> x = checks::random_activations(kTokens * n_in, 8001);
      for (int64_t n_tokens : {2, 3, 4, 7, 8, 37})
        for (const auto& [begin, end] : {std::pair<int64_t, int64_t>{0, 22}, {4, 8}, {5, 7}, {16, 22}}) {
          std::vector<float> expected(size_t(n_tokens * kRows), -1.0f), got(expected);
          sdot(m.bytes.data(), m.row_bytes, n_in, x.data(), n_tokens, expected.data(), kRows, begin, end);
          smmla(m.bytes.data(), m.row_bytes, n_in, x.data(), n_tokens, got.data(), kRows, begin, end);
          i8mm.expect(std::memcmp(got.data(), expected.data(), got.size() * sizeof(float)) == 0,
                      name + " rows [" + std::to_string(begin) + ", " + std::to_string(end) + ") tokens " +
                          std::to_string(n_tokens) + ": smmla's bits differ from sdot's");
        }
    }
    std::printf("NEON integer (i8mm) prompt kernels: %s\n", used.empty() ? "not used (no i8mm)" : used.c_str());
    print_and_count("i8mm", i8mm);
  }

  std::printf("%lld passed, %lld failed\n", static_cast<long long>(total_passed), static_cast<long long>(total_failed));
  return total_failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
