# Cross-compile the C++ core and its unit tests for 64-bit Windows with mingw-w64 on Linux:
#   cmake -S . -B build/win -G Ninja -DCMAKE_TOOLCHAIN_FILE=cmake/mingw-w64.cmake \
#         -DHKRT_BUILD_PYTHON=OFF -DHKRT_BUILD_TESTS=ON
#   cmake --build build/win && WINEDEBUG=-all wine build/win/test_time.exe
# Debian packages: g++-mingw-w64-x86-64-posix (the posix-threads variant: std::thread and
# std::mutex need winpthreads; the win32 variant lacks them in GCC 12) and wine/wine64 to run
# the tests.  FlatBuffers' flatc still runs on the host (found as in the native build).
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)
set(_hkrt_mingw_triplet x86_64-w64-mingw32)

# Prefer the explicitly posix-threaded driver; the unsuffixed name follows Debian's alternatives.
find_program(_hkrt_mingw_cxx NAMES ${_hkrt_mingw_triplet}-g++-posix ${_hkrt_mingw_triplet}-g++ REQUIRED)
find_program(_hkrt_mingw_windres NAMES ${_hkrt_mingw_triplet}-windres)
set(CMAKE_CXX_COMPILER "${_hkrt_mingw_cxx}")
if(_hkrt_mingw_windres)
  set(CMAKE_RC_COMPILER "${_hkrt_mingw_windres}")
endif()

set(CMAKE_FIND_ROOT_PATH /usr/${_hkrt_mingw_triplet})
# Programs (flatc, python) run on the host; libraries and headers come from the target sysroot.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# Fully static executables: they run under wine (or on a bare Windows box) without the
# mingw runtime DLLs (libstdc++-6, libgcc_s_seh-1, libwinpthread-1) beside them.
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static -static-libgcc -static-libstdc++")
# Tests are .exe files: let ctest run them through wine when it is on PATH.
find_program(_hkrt_wine NAMES wine wine64)
if(_hkrt_wine)
  set(CMAKE_CROSSCOMPILING_EMULATOR "${_hkrt_wine}")
endif()
