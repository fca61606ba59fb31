// libFuzzer target for the checkpoint reader (see state_dict_entry.h). Built by make fuzz (clang).
#include "core/fuzz/state_dict_entry.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  scalpel::fuzz_read_state_dict(data, size);
  return 0;
}
