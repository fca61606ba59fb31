// libFuzzer target for the image-folder decoder (see image_entry.h). Built by make fuzz (clang).
#include "data/fuzz/image_entry.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  scalpel::data::fuzz_decode_image(data, size);
  return 0;
}
