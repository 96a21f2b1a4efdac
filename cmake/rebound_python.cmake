# The CPython that rebound-trampoline embeds: REBOUND_PYTHON names its
# interpreter (Debian's /usr/bin/python3 unless told otherwise), and
# everything else is asked of that interpreter's own sysconfig, as its
# python3.x-config --embed does: the headers, the library to link, its
# prefix. Nothing is taken from the environment (PATH, a pyenv shim).
#
# Defines:
#   rebound_python            INTERFACE target: headers, libpython, an rpath
#                             to a libpython outside the linker's default path
#   REBOUND_PYTHON_EXE        the interpreter, as named (a venv's python stays
#                             the venv's: its pyvenv.cfg is found next to it)
#   REBOUND_PYTHON_VERSION    its version, e.g. 3.13.0
#   REBOUND_PYTHON_PREFIX, REBOUND_PYTHON_BASE_PREFIX
#                             sys.prefix and sys.base_prefix (a container
#                             binds them when they are not under /usr)
# (trampoline/CMakeLists.txt hands REBOUND_PYTHON_EXE to rebound-trampoline:
# it becomes PyConfig.program_name, from which Python finds its prefix and
# standard library, and sys.executable.)

set(REBOUND_PYTHON "/usr/bin/python3" CACHE FILEPATH
    "The CPython interpreter (3.11 to 3.13) whose library rebound-trampoline embeds")

if(NOT EXISTS "${REBOUND_PYTHON}")
    message(FATAL_ERROR "REBOUND_PYTHON=${REBOUND_PYTHON}: no such file "
                        "(name an interpreter, e.g. $HOME/.pyenv/versions/3.13.0/bin/python3)")
endif()

# One line per field, in this order. LIBPL is where a static libpython
# lies in some builds; LINKFORSHARED is what a static one needs so that
# extension modules find the interpreter's symbols.
set(_rb_py_query [=[
import os, sys, sysconfig
v = sysconfig.get_config_var
print(sys.executable)
print("%d.%d.%d" % sys.version_info[:3])
print("%d.%d" % sys.version_info[:2])
print(v("INCLUDEPY") or "")
print(v("LIBDIR") or "")
print(v("LIBPL") or "")
print(v("LDLIBRARY") or "")
print(v("Py_ENABLE_SHARED") or 0)
print(v("LIBS") or "")
print(v("SYSLIBS") or "")
print(v("LINKFORSHARED") or "")
print(sys.prefix)
print(sys.base_prefix)
]=])
execute_process(COMMAND "${REBOUND_PYTHON}" -I -c "${_rb_py_query}"
                OUTPUT_VARIABLE _rb_py_out ERROR_VARIABLE _rb_py_err RESULT_VARIABLE _rb_py_rc
                OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT _rb_py_rc EQUAL 0)
    message(FATAL_ERROR "REBOUND_PYTHON=${REBOUND_PYTHON} did not run: ${_rb_py_err}")
endif()
string(REPLACE "\n" ";" _rb_py_fields "${_rb_py_out}")
list(LENGTH _rb_py_fields _rb_py_n)
if(NOT _rb_py_n EQUAL 13)
    message(FATAL_ERROR "REBOUND_PYTHON=${REBOUND_PYTHON}: unexpected sysconfig answer: ${_rb_py_out}")
endif()
list(GET _rb_py_fields 0 REBOUND_PYTHON_EXE)
list(GET _rb_py_fields 1 REBOUND_PYTHON_VERSION)
list(GET _rb_py_fields 2 _rb_py_short)
list(GET _rb_py_fields 3 _rb_py_include)
list(GET _rb_py_fields 4 _rb_py_libdir)
list(GET _rb_py_fields 5 _rb_py_libpl)
list(GET _rb_py_fields 6 _rb_py_ldlibrary)
list(GET _rb_py_fields 7 _rb_py_shared)
list(GET _rb_py_fields 8 _rb_py_libs)
list(GET _rb_py_fields 9 _rb_py_syslibs)
list(GET _rb_py_fields 10 _rb_py_linkforshared)
list(GET _rb_py_fields 11 REBOUND_PYTHON_PREFIX)
list(GET _rb_py_fields 12 REBOUND_PYTHON_BASE_PREFIX)

if(_rb_py_short VERSION_LESS 3.11 OR _rb_py_short VERSION_GREATER 3.13)
    message(FATAL_ERROR "REBOUND_PYTHON=${REBOUND_PYTHON} is Python ${REBOUND_PYTHON_VERSION}; "
                        "rebound embeds 3.11, 3.12 or 3.13 (what its use of CPython's "
                        "internals was checked against)")
endif()
if(NOT EXISTS "${_rb_py_include}/Python.h")
    message(FATAL_ERROR "Python ${REBOUND_PYTHON_VERSION} (${REBOUND_PYTHON}) has no headers in "
                        "'${_rb_py_include}' (Debian: apt-get install python3-dev)")
endif()

# The library: LDLIBRARY in LIBDIR (a shared build: libpython3.x.so), else
# in LIBPL (some static builds keep libpython3.x.a there only).
set(_rb_py_lib "")
foreach(dir IN ITEMS "${_rb_py_libdir}" "${_rb_py_libpl}")
    if(_rb_py_lib STREQUAL "" AND EXISTS "${dir}/${_rb_py_ldlibrary}")
        set(_rb_py_lib "${dir}/${_rb_py_ldlibrary}")
    endif()
endforeach()
if(_rb_py_lib STREQUAL "")
    message(FATAL_ERROR "Python ${REBOUND_PYTHON_VERSION} (${REBOUND_PYTHON}): its library "
                        "${_rb_py_ldlibrary} is in neither ${_rb_py_libdir} nor ${_rb_py_libpl}")
endif()

add_library(rebound_python INTERFACE)
target_include_directories(rebound_python SYSTEM INTERFACE "${_rb_py_include}")
if(_rb_py_shared)
    # A shared libpython brings its own dependencies. One outside the
    # dynamic linker's directories (pyenv's, a /opt build) is found through
    # the binary's rpath, the same in the build tree and once installed
    # (built so from the start: CMake's build-tree rpath would end in an
    # empty entry, the current directory, kept as room for the install's).
    target_link_libraries(rebound_python INTERFACE "${_rb_py_lib}")
    if(NOT _rb_py_libdir IN_LIST CMAKE_C_IMPLICIT_LINK_DIRECTORIES)
        set(CMAKE_INSTALL_RPATH_USE_LINK_PATH ON)
        set(CMAKE_BUILD_WITH_INSTALL_RPATH ON)
    endif()
else()
    # A static libpython needs its libraries named, and exports the
    # program's symbols to the extension modules (.so files) it loads.
    separate_arguments(_rb_py_deps UNIX_COMMAND "${_rb_py_libs} ${_rb_py_syslibs}")
    separate_arguments(_rb_py_lfs UNIX_COMMAND "${_rb_py_linkforshared}")
    target_link_libraries(rebound_python INTERFACE "${_rb_py_lib}" ${_rb_py_deps})
    target_link_options(rebound_python INTERFACE ${_rb_py_lfs})
endif()

message(STATUS "Embedded Python: ${REBOUND_PYTHON_VERSION} (${REBOUND_PYTHON_EXE}, "
               "prefix ${REBOUND_PYTHON_PREFIX}, library ${_rb_py_lib})")
