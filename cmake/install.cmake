# `cmake --install`: the CLI, both libraries, the public headers, a CMake
# package (find_package(slidesparse)) and a pkg-config file (slidesparse.pc).
# Included from CMakeLists.txt after the targets are defined.
include(CMakePackageConfigHelpers)
set(SS_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/slidesparse)

# --- what the static library needs from an installed tree ---------------------------
# The build tree gets these through ss_library_usage; an installed tree has no
# ss_library_usage, so the same dependencies are named again here, as targets that
# slidesparseConfig.cmake recreates (slidesparse::cusparselt: the library file
# this build linked, which may live in a Python package rather than a system
# folder).
set(SS_STATIC_DEPS PkgConfig::JANSSON OpenMP::OpenMP_C)
set(SS_PC_LIBS_PRIVATE "")
if(MATH_LIBRARY)
  list(APPEND SS_STATIC_DEPS m)
  string(APPEND SS_PC_LIBS_PRIVATE " -lm")
endif()
string(APPEND SS_PC_LIBS_PRIVATE " ${OpenMP_C_FLAGS}")
set(SS_CFG_CUSPARSELT "")
if(SS_HAVE_CUDA)
  list(APPEND SS_STATIC_DEPS CUDA::cudart CUDA::cublasLt ${CMAKE_DL_LIBS})
  string(APPEND SS_PC_LIBS_PRIVATE " -L${CUDAToolkit_LIBRARY_DIR} -lcudart -lcublasLt")
  if(SS_HAVE_CUSPARSELT)
    list(APPEND SS_STATIC_DEPS slidesparse::cusparselt)
    set(SS_CFG_CUSPARSELT ${CUSPARSELT_LIBRARY})
    string(APPEND SS_PC_LIBS_PRIVATE " ${CUSPARSELT_LIBRARY}")
  endif()
  foreach(l ${CMAKE_DL_LIBS})
    string(APPEND SS_PC_LIBS_PRIVATE " -l${l}")
  endforeach()
endif()
if(SS_HAVE_SM90SP)
  string(APPEND SS_PC_LIBS_PRIVATE " -lstdc++") # the target's interface carries stdc++ already
endif()
foreach(d ${SS_STATIC_DEPS})
  target_link_libraries(slidesparse_static INTERFACE $<INSTALL_INTERFACE:$<LINK_ONLY:${d}>>)
endforeach()
string(STRIP "${SS_PC_LIBS_PRIVATE}" SS_PC_LIBS_PRIVATE)

# --- files ------------------------------------------------------------------------------
install(TARGETS slidesparse RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
# Two export sets: the shared library needs nothing from its user's machine at
# link time, the static one needs its dependencies found there.
install(TARGETS slidesparse_shared EXPORT slidesparseSharedTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS slidesparse_static EXPORT slidesparseStaticTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        FILES_MATCHING PATTERN "*.h")
foreach(set slidesparseSharedTargets slidesparseStaticTargets)
  install(EXPORT ${set} NAMESPACE slidesparse:: DESTINATION ${SS_CMAKE_DIR})
endforeach()
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/slidesparseConfig.cmake.in
  ${PROJECT_BINARY_DIR}/slidesparseConfig.cmake INSTALL_DESTINATION ${SS_CMAKE_DIR})
# 0.x: a new minor version may change the API, so only the same minor matches.
if(PROJECT_VERSION_MAJOR EQUAL 0)
  set(SS_COMPAT SameMinorVersion)
else()
  set(SS_COMPAT SameMajorVersion)
endif()
write_basic_package_version_file(${PROJECT_BINARY_DIR}/slidesparseConfigVersion.cmake COMPATIBILITY ${SS_COMPAT})
install(FILES ${PROJECT_BINARY_DIR}/slidesparseConfig.cmake ${PROJECT_BINARY_DIR}/slidesparseConfigVersion.cmake
        DESTINATION ${SS_CMAKE_DIR})

# slidesparse.pc: written at install time, so that `cmake --install --prefix P`
# puts P, not the configured prefix, into it.
foreach(v PREFIX LIBDIR INCLUDEDIR) # kept as placeholders for the install step
  set(SS_PC_${v} "@SS_PC_${v}@")
endforeach()
configure_file(${PROJECT_SOURCE_DIR}/cmake/slidesparse.pc.in ${PROJECT_BINARY_DIR}/slidesparse.pc.in @ONLY)
install(CODE "
  set(SS_PC_LIBDIR \"${CMAKE_INSTALL_LIBDIR}\")
  set(SS_PC_INCLUDEDIR \"${CMAKE_INSTALL_INCLUDEDIR}\")
  foreach(v LIBDIR INCLUDEDIR)
    if(NOT IS_ABSOLUTE \"\${SS_PC_\${v}}\")
      set(SS_PC_\${v} \"\\\${prefix}/\${SS_PC_\${v}}\")
    endif()
  endforeach()
  set(SS_PC_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
  configure_file(\"${PROJECT_BINARY_DIR}/slidesparse.pc.in\" \"${PROJECT_BINARY_DIR}/slidesparse.pc\" @ONLY)
")
install(FILES ${PROJECT_BINARY_DIR}/slidesparse.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig
       )
