# Small helpers so every target gets the same warnings and is listed by name.

function(fanout_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Werror)
  if(FANOUT_THREAD_SAFETY)
    target_compile_options(${target} PRIVATE -Wthread-safety)
  endif()
endfunction()

# fanout_library(NAME name SRCS a.cc b.cc DEPS lib...)
function(fanout_library)
  cmake_parse_arguments(ARG "" "NAME" "SRCS;DEPS" ${ARGN})
  add_library(${ARG_NAME} STATIC ${ARG_SRCS})
  target_include_directories(${ARG_NAME} PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(${ARG_NAME} PUBLIC ${ARG_DEPS})
  fanout_warnings(${ARG_NAME})
endfunction()

# fanout_test(NAME name SRCS a_test.cc DEPS lib... [LABELS unit tsan ...])
# LABELS: unit or integration, plus tsan for the threaded code ThreadSanitizer runs.
# Each test binary is registered with ctest case by case.
function(fanout_test)
  cmake_parse_arguments(ARG "" "NAME" "SRCS;DEPS;LABELS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SRCS})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
  set_target_properties(${ARG_NAME} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  fanout_warnings(${ARG_NAME})
  # One label joined from the list ("unit_tsan"): gtest discovery cannot pass
  # a list, and `ctest -L` matches a regex, so -L tsan and -L unit both select it.
  string(REPLACE ";" "_" labels "${ARG_LABELS}")
  gtest_discover_tests(${ARG_NAME}
    DISCOVERY_MODE PRE_TEST
    PROPERTIES LABELS "${labels}" ENVIRONMENT "FANOUT_BIN=${CMAKE_BINARY_DIR}/bin/fanout")
endfunction()
