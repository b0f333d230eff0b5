# Sourced on the GPU machine (no package registry there): unpacks the Debian
# packages carried in .carry/debs (fetched here with `apt-get download`) into
# /tmp/deps and points pkg-config, the compiler and the loader at them; finds
# cuSPARSELt in the machine's Python environment.
#   source scripts/device_env.sh
D=/tmp/deps
if [[ ! -d $D/usr ]]; then
  mkdir -p $D
  for f in .carry/debs/*.deb; do dpkg -x "$f" $D; done
fi
export PATH=$D/usr/bin:$PATH
export LD_LIBRARY_PATH=$D/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
export PKG_CONFIG_LIBDIR=$D/usr/lib/x86_64-linux-gnu/pkgconfig:$D/usr/share/pkgconfig
export PKG_CONFIG_SYSROOT_DIR=$D
export PKG_CONFIG=$D/usr/bin/pkgconf
export LIBRARY_PATH=$D/usr/lib/x86_64-linux-gnu:${LIBRARY_PATH:-}
export CMAKE_PREFIX_PATH=$D/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}
if [[ -z "${CUSPARSELT_ROOT:-}" ]]; then
  CUSPARSELT_ROOT=$(python3 -c "import nvidia.cusparselt as m; print(m.__path__[0])" 2>/dev/null || true)
  export CUSPARSELT_ROOT
fi
echo "device_env: deps in $D, cuSPARSELt at ${CUSPARSELT_ROOT:-none} ($(python3 -m pip show nvidia-cusparselt-cu13 2>/dev/null | grep ^Version))"
# cuSPARSELt 0.8.0's header includes <cstddef> and uses alignas without
# <stdalign.h>, which a C compiler cannot take (fixed in 0.8.1): point the build
# at a copy with <stddef.h>/<stdalign.h>, same library.
if [[ -n "${CUSPARSELT_ROOT:-}" ]] && grep -q '#include <cstddef>' "$CUSPARSELT_ROOT/include/cusparseLt.h" 2>/dev/null; then
  fix=/tmp/cusparselt-c
  mkdir -p $fix/include
  { printf '#ifndef __cplusplus\n#include <stddef.h>\n#include <stdalign.h> /* alignas */\n#endif\n'
    sed 's/#include <cstddef>//' "$CUSPARSELT_ROOT/include/cusparseLt.h"; } >$fix/include/cusparseLt.h
  ln -sfn "$CUSPARSELT_ROOT/lib" $fix/lib
  export CUSPARSELT_ROOT=$fix
  echo "device_env: cuSPARSELt header patched for C at $fix"
fi
