#include "core/malloc_tuning.h"

#include <malloc.h>

namespace jamba {

void ReuseFreedMemory() {
#if defined(__GLIBC__)
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 128 << 20);
#endif
}

}  // namespace jamba
