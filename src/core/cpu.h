// CPU feature detection, done once. Kernel dispatch asks here which ISA
// levels the host can run; SPARTA_ISA=avx512|avx2|portable caps the choice
// (for testing the lower paths on a bigger machine).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace sparta {

enum class Isa { portable = 0, avx2 = 1, avx512 = 2 };
std::string_view isa_name(Isa isa);

// Highest ISA the host supports, after the SPARTA_ISA cap.
Isa host_isa();
bool host_supports(Isa isa);
// All ISAs the host runs, lowest first (for tests that sweep every path).
std::vector<Isa> host_isas();

// The CPU model as kernel timings depend on it: vendor, family, model and
// stepping from CPUID, then the brand string ("AuthenticAMD 26.2.1 AMD EPYC").
const std::string& host_cpu_model();
// oneDNN's version, "2.6.3".
const std::string& onednn_version();

}  // namespace sparta
