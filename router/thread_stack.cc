// Makes room for static TLS in threads that ask for a fixed stack size.
//
// prometheus-cpp serves /metrics through civetweb, which starts its threads
// with a fixed stack (Debian builds it with USE_STACK_SIZE=102400). glibc
// carves the static TLS of every library loaded at startup out of each
// thread's stack, and in a CUDA build cuBLAS and cuBLASLt alone hold about
// 110 KiB of it: pthread_create then fails with EINVAL and the metrics
// server cannot start ("null context when constructing CivetServer").
//
// We interpose pthread_attr_setstacksize (the executable exports it, see
// router/CMakeLists.txt) and add the static TLS size to every explicit
// request, so each thread keeps the stack its creator asked for.
#include <dlfcn.h>
#include <link.h>
#include <pthread.h>

#include <cstddef>

namespace {

int AddTlsSegment(dl_phdr_info* info, size_t /*size*/, void* data) {
  size_t* total = static_cast<size_t*>(data);
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& header = info->dlpi_phdr[i];
    if (header.p_type == PT_TLS) *total += header.p_memsz + header.p_align;
  }
  return 0;
}

// Bytes of TLS of every object loaded so far, with their alignment padding.
size_t StaticTlsBytes() {
  size_t total = 0;
  dl_iterate_phdr(AddTlsSegment, &total);
  return total;
}

}  // namespace

extern "C" int pthread_attr_setstacksize(pthread_attr_t* attr, size_t stack_size) {
  using SetStackSize = int (*)(pthread_attr_t*, size_t);
  static const SetStackSize real =
      reinterpret_cast<SetStackSize>(dlsym(RTLD_NEXT, "pthread_attr_setstacksize"));
  static const size_t tls_bytes = StaticTlsBytes();
  return real(attr, stack_size + tls_bytes);
}
