# Finds cuSPARSELt and defines the imported target cusparselt::cusparselt.
# Search order:
#   1. CUSPARSELT_ROOT (cache variable or environment): <root>/include, <root>/lib
#   2. the Python package nvidia-cusparselt-cu13 of `python3` on PATH:
#      site-packages/nvidia/cusparselt/{include,lib} (0.8.x) or
#      site-packages/nvidia/cu13/{include,lib} (0.9+)
# Says which one was used, or why the sparse backend is off.
set(CUSPARSELT_FOUND FALSE)
set(_ss_cands "")
if(CUSPARSELT_ROOT)
  list(APPEND _ss_cands "${CUSPARSELT_ROOT}")
  set(_ss_how "CUSPARSELT_ROOT=${CUSPARSELT_ROOT}")
else()
  find_program(_ss_python NAMES python3 python)
  if(_ss_python)
    execute_process(
      COMMAND ${_ss_python} -c "import importlib.util as u, os\nfor n in ('nvidia.cusparselt', 'nvidia.cu13', 'nvidia'):\n    try:\n        s = u.find_spec(n)\n    except Exception:\n        s = None\n    if s and s.submodule_search_locations:\n        for p in s.submodule_search_locations:\n            for sub in ('', 'cusparselt', 'cu13'):\n                d = os.path.join(p, sub)\n                if os.path.exists(os.path.join(d, 'include', 'cusparseLt.h')):\n                    print(d)\n"
      OUTPUT_VARIABLE _ss_py_out ERROR_QUIET OUTPUT_STRIP_TRAILING_WHITESPACE)
    if(_ss_py_out)
      string(REPLACE "\n" ";" _ss_py_list "${_ss_py_out}")
      list(APPEND _ss_cands ${_ss_py_list})
      set(_ss_how "the Python package nvidia-cusparselt-cu13 (${_ss_python})")
    endif()
  endif()
endif()

foreach(root ${_ss_cands})
  if(EXISTS "${root}/include/cusparseLt.h")
    find_library(CUSPARSELT_LIBRARY NAMES cusparseLt libcusparseLt.so.0
                 PATHS "${root}/lib" "${root}/lib64" NO_DEFAULT_PATH)
    if(NOT CUSPARSELT_LIBRARY AND EXISTS "${root}/lib/libcusparseLt.so.0")
      set(CUSPARSELT_LIBRARY "${root}/lib/libcusparseLt.so.0")
    endif()
    if(CUSPARSELT_LIBRARY)
      set(CUSPARSELT_INCLUDE_DIR "${root}/include")
      set(CUSPARSELT_FOUND TRUE)
      break()
    endif()
  endif()
endforeach()

if(CUSPARSELT_FOUND)
  file(STRINGS "${CUSPARSELT_INCLUDE_DIR}/cusparseLt.h" _ss_ver REGEX "#define CUSPARSELT_VER_(MAJOR|MINOR|PATCH) ")
  string(REGEX REPLACE ".*MAJOR ([0-9]+).*MINOR ([0-9]+).*PATCH ([0-9]+).*" "\\1.\\2.\\3" CUSPARSELT_VERSION "${_ss_ver}")
  add_library(cusparselt::cusparselt SHARED IMPORTED)
  set_target_properties(cusparselt::cusparselt PROPERTIES
    IMPORTED_LOCATION "${CUSPARSELT_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${CUSPARSELT_INCLUDE_DIR}")
  get_filename_component(_ss_libdir "${CUSPARSELT_LIBRARY}" DIRECTORY)
  set(CMAKE_BUILD_RPATH "${CMAKE_BUILD_RPATH};${_ss_libdir}")
  set(CMAKE_INSTALL_RPATH "${CMAKE_INSTALL_RPATH};${_ss_libdir}")
  message(STATUS "slidesparse: cuSPARSELt ${CUSPARSELT_VERSION} from ${_ss_how}: ${CUSPARSELT_LIBRARY}")
else()
  if(_ss_how)
    message(STATUS "slidesparse: cuSPARSELt not usable at ${_ss_how} (no include/cusparseLt.h + lib/libcusparseLt.so.0): sparse backend OFF")
  else()
    message(STATUS "slidesparse: cuSPARSELt not found (set CUSPARSELT_ROOT or `pip install nvidia-cusparselt-cu13`): sparse backend OFF")
  endif()
endif()
