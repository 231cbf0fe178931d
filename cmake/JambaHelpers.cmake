# Shared CMake helpers: optional CUDA, tests.

# Sets JAMBA_HAVE_CUDA when JAMBA_ENABLE_CUDA is on and nvcc is usable.
macro(jamba_enable_cuda_if_found)
  set(JAMBA_HAVE_CUDA OFF)
  if(JAMBA_ENABLE_CUDA)
    include(CheckLanguage)
    check_language(CUDA)
    if(CMAKE_CUDA_COMPILER)
      if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
        set(CMAKE_CUDA_ARCHITECTURES 80 90)  # A100, H100/H200
      endif()
      set(CMAKE_CUDA_RUNTIME_LIBRARY Shared)
      enable_language(CUDA)
      find_package(CUDAToolkit REQUIRED)
      set(JAMBA_HAVE_CUDA ON)
    endif()
  endif()
  message(STATUS "jamba: CUDA backend ${JAMBA_HAVE_CUDA}")
endmacro()

# jamba_add_test(<name> SOURCES ... LIBS ...): one gtest binary, cases
# registered with ctest and run from the source tree root.
function(jamba_add_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} GTest::gmock GTest::gtest_main)
  gtest_discover_tests(${name}
    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
    DISCOVERY_TIMEOUT 60)
endfunction()

# jamba_grpc_proto_library(<target> <import_dir> <file.proto>...): runs protoc
# with the gRPC plugin into one static library. Works for .proto files
# outside the source tree too (grpc-proto's health.proto).
function(jamba_grpc_proto_library target import_dir)
  set(out ${CMAKE_CURRENT_BINARY_DIR}/gen)
  set(srcs)
  foreach(proto ${ARGN})
    string(REGEX REPLACE "\\.proto$" "" base ${proto})
    set(outputs ${out}/${base}.pb.cc ${out}/${base}.pb.h
                ${out}/${base}.grpc.pb.cc ${out}/${base}.grpc.pb.h)
    add_custom_command(OUTPUT ${outputs}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${out}
      COMMAND protobuf::protoc -I ${import_dir} --cpp_out=${out} --grpc_out=${out}
              --plugin=protoc-gen-grpc=$<TARGET_FILE:gRPC::grpc_cpp_plugin>
              ${import_dir}/${proto}
      DEPENDS ${import_dir}/${proto} protobuf::protoc gRPC::grpc_cpp_plugin
      VERBATIM)
    list(APPEND srcs ${outputs})
  endforeach()
  add_library(${target} STATIC ${srcs})
  target_include_directories(${target} PUBLIC ${out})
  target_link_libraries(${target} PUBLIC gRPC::grpc++ protobuf::libprotobuf)
  target_compile_options(${target} PRIVATE -w)
endfunction()
