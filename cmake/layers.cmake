# The library's layers (docs/DESIGN.md, "Layers"): one object library per
# folder of src/, ss_<layer>, compiled with the include folders of the layers
# it may use and no others, so that including a header of a layer it may not
# use, or another folder's private header, fails to compile. The object
# libraries are combined into libslidesparse (CMakeLists.txt).
#
# Each layer's headers:
#   include/slidesparse/<layer>.h   public: installed, the exported API
#   src/<layer>/include/<layer>/    the layer's interface to the layers above it
#                                   (library-internal), included as "<layer>/x.h"
#   src/<layer>/*.h                 private to the folder, included by a name
#                                   relative to the including file or to
#                                   src/<layer>/ ("backend.h", "cuda/kernels.h")
# Its sources are listed in src/<layer>/CMakeLists.txt (ss_layer); a source file
# under src/ that no list names stops the configure step.

# What each layer may use (besides itself): the dependency table of
# docs/DESIGN.md. Listed in dependency order; a layer uses only layers above
# it in this list.
set(SS_LAYERS core sparse io quant linear tokenizer tune prep engine serve bench pipeline)
set(SS_USES_core      "")
set(SS_USES_sparse    core)
set(SS_USES_io        core sparse)
set(SS_USES_quant     core sparse)
set(SS_USES_linear    core sparse quant)
set(SS_USES_tokenizer core sparse io)
set(SS_USES_tune      core sparse io quant linear)
set(SS_USES_prep      core sparse io quant linear)
set(SS_USES_engine    core sparse io quant linear)
set(SS_USES_serve     core sparse io quant linear tokenizer engine)
set(SS_USES_bench     core sparse io quant linear tune)
set(SS_USES_pipeline  core sparse io quant linear tokenizer tune prep engine serve bench)

# What every layer compiles with and what a program linking the static library
# in this build tree needs: the public headers, the dependencies, the feature
# macros (tests and tools read them too).
add_library(ss_library_usage INTERFACE)
target_include_directories(ss_library_usage INTERFACE $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>)
target_link_libraries(ss_library_usage INTERFACE PkgConfig::JANSSON OpenMP::OpenMP_C)
if(MATH_LIBRARY)
  target_link_libraries(ss_library_usage INTERFACE ${MATH_LIBRARY})
endif()
target_compile_definitions(ss_library_usage INTERFACE SS_VERSION="${PROJECT_VERSION}")
if(SS_HAVE_CUDA)
  target_compile_definitions(ss_library_usage INTERFACE SS_HAVE_CUDA=1)
  # dlopen of libnvidia-ml (src/bench/clocks.c): in libc from glibc 2.34, libdl before
  target_link_libraries(ss_library_usage INTERFACE CUDA::cudart CUDA::cublasLt ${CMAKE_DL_LIBS})
endif()
if(SS_HAVE_CUSPARSELT)
  target_compile_definitions(ss_library_usage INTERFACE SS_HAVE_CUSPARSELT=1)
  target_link_libraries(ss_library_usage INTERFACE cusparselt::cusparselt)
endif()
if(SS_HAVE_SM90SP)
  target_compile_definitions(ss_library_usage INTERFACE SS_HAVE_SM90SP=1)
endif()

# Tests, the CLI, dev/ harnesses and fuzz targets look inside (white box):
# every private folder and every layer's interface.
add_library(ss_whitebox INTERFACE)
target_include_directories(ss_whitebox INTERFACE ${PROJECT_SOURCE_DIR}/src)
foreach(l ${SS_LAYERS})
  target_include_directories(ss_whitebox INTERFACE ${PROJECT_SOURCE_DIR}/src/${l}/include)
endforeach()

# ss_layer_includes(target layer): the include folders a file of `layer` sees.
function(ss_layer_includes target layer)
  set(dirs ${PROJECT_SOURCE_DIR}/src/${layer} ${PROJECT_SOURCE_DIR}/src/${layer}/include)
  foreach(d ${SS_USES_${layer}})
    list(APPEND dirs ${PROJECT_SOURCE_DIR}/src/${d}/include)
  endforeach()
  target_include_directories(${target} PRIVATE ${dirs})
  target_link_libraries(${target} PRIVATE ss_library_usage)
endfunction()

# ss_layer(<layer> SOURCES f.c ...          always built
#                  [CUDA_SOURCES f.cu g.c ...]     CUDA builds only
#                  [CUSPARSELT_SOURCES f.c ...]    CUDA builds with cuSPARSELt
#                  [SM90A_SOURCES f.cu ...])       CUTLASS builds with sm_90: compiled
#                                                  for sm_90a alone, C++17
# Called from src/<layer>/CMakeLists.txt; paths relative to that folder.
function(ss_layer layer)
  cmake_parse_arguments(PARSE_ARGV 1 A "" "" "SOURCES;CUDA_SOURCES;CUSPARSELT_SOURCES;SM90A_SOURCES")
  if(NOT layer IN_LIST SS_LAYERS)
    message(FATAL_ERROR "ss_layer(${layer}): not a layer of cmake/layers.cmake (${SS_LAYERS})")
  endif()
  set(listed ${A_SOURCES} ${A_CUDA_SOURCES} ${A_CUSPARSELT_SOURCES} ${A_SM90A_SOURCES})
  list(TRANSFORM listed PREPEND ${CMAKE_CURRENT_SOURCE_DIR}/)
  set_property(GLOBAL APPEND PROPERTY SS_LAYER_LISTED ${listed})

  set(srcs ${A_SOURCES})
  if(SS_HAVE_CUDA)
    list(APPEND srcs ${A_CUDA_SOURCES})
  endif()
  if(SS_HAVE_CUSPARSELT)
    list(APPEND srcs ${A_CUSPARSELT_SOURCES})
  endif()
  add_library(ss_${layer} OBJECT ${srcs})
  ss_layer_includes(ss_${layer} ${layer})
  if(SS_HAVE_CUDA)
    set_target_properties(ss_${layer} PROPERTIES CUDA_SEPARABLE_COMPILATION OFF)
    target_compile_options(ss_${layer} PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-O3 --expt-relaxed-constexpr -Xcompiler=-fPIC>)
  endif()
  set_property(GLOBAL APPEND PROPERTY SS_LAYER_OBJECTS $<TARGET_OBJECTS:ss_${layer}>)

  if(SS_HAVE_SM90SP AND A_SM90A_SOURCES)
    # CUDA_ARCHITECTURES OFF: the explicit -gencode replaces the project's 80;89;90
    # (wgmma.sp needs the arch-specific target).
    add_library(ss_${layer}_sm90a OBJECT ${A_SM90A_SOURCES})
    ss_layer_includes(ss_${layer}_sm90a ${layer})
    target_include_directories(ss_${layer}_sm90a PRIVATE ${SS_CUTLASS_INCLUDE}
                               ${SS_CUTLASS_INCLUDE}/../tools/util/include)
    target_compile_definitions(ss_${layer}_sm90a PRIVATE NDEBUG)
    set_target_properties(ss_${layer}_sm90a PROPERTIES CUDA_ARCHITECTURES OFF CUDA_STANDARD 17
                          CUDA_STANDARD_REQUIRED ON)
    target_compile_options(ss_${layer}_sm90a PRIVATE -O3 --expt-relaxed-constexpr -Xcompiler=-fPIC
                           -gencode=arch=compute_90a,code=sm_90a)
    set_property(GLOBAL APPEND PROPERTY SS_LAYER_OBJECTS $<TARGET_OBJECTS:ss_${layer}_sm90a>)
  endif()
endfunction()

foreach(l ${SS_LAYERS})
  add_subdirectory(${PROJECT_SOURCE_DIR}/src/${l} ${PROJECT_BINARY_DIR}/layers/${l})
endforeach()

# Every source file under src/ belongs to one layer's list.
file(GLOB_RECURSE SS_ALL_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/*.c ${PROJECT_SOURCE_DIR}/src/*.cu)
get_property(SS_LISTED GLOBAL PROPERTY SS_LAYER_LISTED)
foreach(f ${SS_ALL_SOURCES})
  if(NOT f IN_LIST SS_LISTED)
    file(RELATIVE_PATH rel ${PROJECT_SOURCE_DIR} ${f})
    string(REGEX REPLACE "^src/([^/]+)/.*" "\\1" l "${rel}")
    message(FATAL_ERROR "${rel} is in no layer: add it to the list in src/${l}/CMakeLists.txt")
  endif()
endforeach()
foreach(f ${SS_LISTED})
  if(NOT EXISTS ${f})
    message(FATAL_ERROR "${f}: listed in a layer's CMakeLists.txt, but there is no such file")
  endif()
endforeach()
get_property(SS_LAYER_OBJECTS GLOBAL PROPERTY SS_LAYER_OBJECTS)

# For the layering test (tests/layers.sh): the table and each layer's objects.
set(SS_LAYER_TABLE "")
foreach(l ${SS_LAYERS})
  list(JOIN SS_USES_${l} " " uses)
  string(APPEND SS_LAYER_TABLE "uses ${l} ${uses}\n")
endforeach()
foreach(l ${SS_LAYERS})
  string(APPEND SS_LAYER_TABLE "objects ${l} $<JOIN:$<TARGET_OBJECTS:ss_${l}>, >\n")
  if(TARGET ss_${l}_sm90a)
    string(APPEND SS_LAYER_TABLE "objects ${l} $<JOIN:$<TARGET_OBJECTS:ss_${l}_sm90a>, >\n")
  endif()
endforeach()
file(GENERATE OUTPUT ${PROJECT_BINARY_DIR}/layers.txt CONTENT "${SS_LAYER_TABLE}")
