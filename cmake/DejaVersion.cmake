# Writes OUT (a header defining DEJA_GIT_COMMIT) from the checkout's commit,
# only when the commit changed, so a rebuild after a commit recompiles one
# small file (common/version.cc). Run at every build by the deja_version
# target (common/CMakeLists.txt) in CMake's script mode:
#   cmake -DSOURCE_DIR=... -DOUT=... [-DCOMMIT=...] -P DejaVersion.cmake
# COMMIT, when given and not empty, wins (the Docker build has no .git);
# "-dirty" marks a checkout with uncommitted changes to tracked files.
if(NOT COMMIT)
  set(COMMIT "unknown")
  find_program(GIT_PROGRAM git)
  if(GIT_PROGRAM AND EXISTS "${SOURCE_DIR}/.git")
    execute_process(COMMAND "${GIT_PROGRAM}" -C "${SOURCE_DIR}" rev-parse --short=12 HEAD
                    OUTPUT_VARIABLE head OUTPUT_STRIP_TRAILING_WHITESPACE
                    RESULT_VARIABLE head_failed ERROR_QUIET)
    if(NOT head_failed AND head)
      set(COMMIT "${head}")
      execute_process(COMMAND "${GIT_PROGRAM}" -C "${SOURCE_DIR}" diff --quiet HEAD --
                      RESULT_VARIABLE dirty ERROR_QUIET)
      if(dirty)
        string(APPEND COMMIT "-dirty")
      endif()
    endif()
  endif()
endif()
set(content "#define DEJA_GIT_COMMIT \"${COMMIT}\"\n")
if(EXISTS "${OUT}")
  file(READ "${OUT}" old)
else()
  set(old "")
endif()
if(NOT old STREQUAL content)
  file(WRITE "${OUT}" "${content}")
endif()
