// libFuzzer target for the byte-level text loader (see text_entry.h). Built by make fuzz (clang).
#include "data/fuzz/text_entry.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  scalpel::data::fuzz_text_windows(data, size);
  return 0;
}
