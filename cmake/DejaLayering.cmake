# The layering rules of docs/architecture.md ("Layering"), held by the build
# instead of a comment.
#
#   deja_forbid_dependencies(<target> <library>...)   library: gRPC, RocksDB
#
# For each library named:
#  - Compile time: <target>'s sources see, ahead of every other include
#    directory, one poison header per header of that library (grpcpp/...,
#    grpc/..., grpc++/... and the generated deja/v1/*.grpc.pb.h for gRPC;
#    rocksdb/... for RocksDB), each a single #error naming the rule. An
#    `#include <grpcpp/support/status.h>` in such a target, written there or
#    reached through another header, stops the build:
#      error: #error "Deja layering: deja_scheduler_core may not use gRPC
#      (it includes grpcpp/support/status.h); see docs/architecture.md"
#  - Configure time (once every CMakeLists has been read): <target>'s link
#    dependencies, followed through every target they name, must not reach
#    the library (gRPC::*, deja_proto, deja_common_grpc; RocksDB::*).
#    Configuring fails naming the chain that reaches it.
#
# tests/layering checks both (ctest -R layering).

set(DEJA_LAYERING_gRPC_LINKS "^(gRPC::.*|deja_proto|deja_common_grpc|grpc.*)$")
set(DEJA_LAYERING_RocksDB_LINKS "^(RocksDB::.*|rocksdb.*)$")

# The headers (relative paths) a library's poison directory mirrors.
function(_deja_layering_headers library out)
  set(headers)
  if(library STREQUAL "gRPC")
    set(imported gRPC::grpc++)
    set(subdirs grpcpp grpc grpc++)
    file(GLOB protos RELATIVE ${PROJECT_SOURCE_DIR}/protos
      ${PROJECT_SOURCE_DIR}/protos/deja/v1/*.proto)
    foreach(proto ${protos})
      string(REGEX REPLACE "\\.proto$" ".grpc.pb.h" header ${proto})
      list(APPEND headers ${header})
    endforeach()
  elseif(library STREQUAL "RocksDB")
    set(imported RocksDB::rocksdb)
    set(subdirs rocksdb)
  else()
    message(FATAL_ERROR "deja_forbid_dependencies: unknown library '${library}'"
      " (known: gRPC, RocksDB)")
  endif()
  set(roots /usr/include)
  if(TARGET ${imported})
    get_target_property(dirs ${imported} INTERFACE_INCLUDE_DIRECTORIES)
    if(dirs)
      list(PREPEND roots ${dirs})
    endif()
  endif()
  list(REMOVE_DUPLICATES roots)
  foreach(root ${roots})
    foreach(subdir ${subdirs})
      if(IS_DIRECTORY ${root}/${subdir})
        file(GLOB_RECURSE found RELATIVE ${root} ${root}/${subdir}/*.h)
        list(APPEND headers ${found})
      endif()
    endforeach()
  endforeach()
  list(REMOVE_DUPLICATES headers)
  if(NOT headers)
    message(FATAL_ERROR "deja_forbid_dependencies: found no ${library} headers to poison")
  endif()
  set(${out} ${headers} PARENT_SCOPE)
endfunction()

# Fails configuring when `target`'s link closure reaches `library`.
function(_deja_layering_check_links target library)
  set(pattern ${DEJA_LAYERING_${library}_LINKS})
  set(queue ${target})
  set(seen ${target})
  set(_via_${target} ${target})
  while(queue)
    list(POP_FRONT queue item)
    set(deps)
    get_target_property(imported ${item} IMPORTED)
    if(NOT imported)
      get_target_property(direct ${item} LINK_LIBRARIES)
      if(direct)
        list(APPEND deps ${direct})
      endif()
    endif()
    get_target_property(iface ${item} INTERFACE_LINK_LIBRARIES)
    if(iface)
      list(APPEND deps ${iface})
    endif()
    foreach(dep ${deps})
      string(REGEX REPLACE "^\\$<LINK_ONLY:(.*)>$" "\\1" dep "${dep}")
      if(dep MATCHES "^\\$<" OR dep MATCHES "^-")
        continue()
      endif()
      if(dep MATCHES "${pattern}")
        message(FATAL_ERROR "Deja layering: ${target} may not link ${library}, but "
          "${_via_${item}} -> ${dep} does; see docs/architecture.md")
      endif()
      if(TARGET ${dep} AND NOT dep IN_LIST seen)
        list(APPEND seen ${dep})
        list(APPEND queue ${dep})
        set(_via_${dep} "${_via_${item}} -> ${dep}")
      endif()
    endforeach()
  endwhile()
endfunction()

function(deja_forbid_dependencies target)
  if(NOT ARGN)
    message(FATAL_ERROR "deja_forbid_dependencies(${target}): name gRPC and/or RocksDB")
  endif()
  foreach(library ${ARGN})
    set(dir ${CMAKE_BINARY_DIR}/layering/${target}/${library})
    if(NOT EXISTS ${dir}/.complete)
      _deja_layering_headers(${library} headers)
      foreach(header ${headers})
        file(WRITE ${dir}/${header}
          "#error \"Deja layering: ${target} may not use ${library} (it includes "
          "${header}); see docs/architecture.md\"\n")
      endforeach()
      file(WRITE ${dir}/.complete "")
    endif()
    target_include_directories(${target} BEFORE PRIVATE ${dir})
    cmake_language(EVAL CODE "cmake_language(DEFER DIRECTORY \"${PROJECT_SOURCE_DIR}\" \
      CALL _deja_layering_check_links \"${target}\" \"${library}\")")
  endforeach()
endfunction()
