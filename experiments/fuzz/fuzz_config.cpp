// libFuzzer target for the config/flag parser (see config_entry.h). Built by make fuzz (clang).
#include "experiments/fuzz/config_entry.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  scalpel::experiments::fuzz_parse_config(data, size);
  return 0;
}
