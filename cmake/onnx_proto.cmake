# pl_onnx_proto_library(<target> <outdir>): a static library of the C code
# protoc-c generates from ${PL_ONNX_PROTO} (Debian libonnx-dev's onnx.proto),
# written to <outdir>/onnx.pb-c.{c,h} at build time. Shared by the main build
# and the fuzz build (tests/fuzz/CMakeLists.txt); callers include "onnx.pb-c.h".
# Needs PL_PROTOC_C, PL_ONNX_PROTO and the PkgConfig::PROTOBUF_C target.
function(pl_onnx_proto_library tgt outdir)
  get_filename_component(proto_dir "${PL_ONNX_PROTO}" DIRECTORY)
  set(gen_c ${outdir}/onnx.pb-c.c)
  set(gen_h ${outdir}/onnx.pb-c.h)
  add_custom_command(
    OUTPUT ${gen_c} ${gen_h}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${outdir}
    COMMAND ${PL_PROTOC_C} --proto_path=${proto_dir} --c_out=${outdir} ${PL_ONNX_PROTO}
    DEPENDS ${PL_ONNX_PROTO}
    COMMENT "protoc-c: generating ONNX protobuf code from ${PL_ONNX_PROTO}"
    VERBATIM)
  add_library(${tgt} STATIC ${gen_c})
  target_include_directories(${tgt} PUBLIC ${outdir})
  target_link_libraries(${tgt} PUBLIC PkgConfig::PROTOBUF_C)
  set_target_properties(${tgt} PROPERTIES POSITION_INDEPENDENT_CODE ON)
endfunction()
