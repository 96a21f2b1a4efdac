# Writes /etc/default/rebound from `rebound-worker --help`, so that the file
# lists every setting the binary has, at the default the binary has: it
# cannot drift from the code. Run at build time:
#   cmake -DWORKER=path/to/rebound-worker -DOUT=file -P default-file.cmake
#
# --help gives, per setting:
#   "  --flag METAVAR" (or "  --flag" for a switch)
#   "      help text" (one line or more)
#   "      [REBOUND_X; default: value]" or "      [REBOUND_X]" (computed
#   default, which the help text describes)
if(NOT WORKER OR NOT OUT)
    message(FATAL_ERROR "default-file.cmake: WORKER and OUT must be set")
endif()
execute_process(COMMAND ${WORKER} --help OUTPUT_VARIABLE help RESULT_VARIABLE rc
                ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
    message(FATAL_ERROR "default-file.cmake: ${WORKER} --help failed (${rc}): ${err}")
endif()

set(text [=[# /etc/default/rebound: the settings of rebound-worker, read by
# rebound-worker.service and rebound-worker@.service (the template reads
# /etc/default/rebound-<instance> after this file). Generated from
# `rebound-worker --help`: every setting is here, commented out at its
# default. Uncomment and change what you need, then
# `systemctl restart rebound-worker`.
#
# Secrets: keep the broker's and Redis's passwords out of this file. Put each
# URL alone in a file of its own that only root can read (mode 0600, e.g.
# /etc/rebound/amqp-url) and name it with REBOUND_AMQP_URL_FILE and
# REBOUND_REDIS_URL_FILE below. Nothing here reaches a job: a job sees none
# of the worker's REBOUND_* variables.
#
# rebound-worker.service stops the worker with SIGTERM and waits
# TimeoutStopSec (60 s) before it kills what is left: REBOUND_DRAIN_MS plus
# the supervisor's 10 s must stay below it (raise TimeoutStopSec with
# `systemctl edit rebound-worker` if you raise REBOUND_DRAIN_MS).
]=])

string(REPLACE ";" "\\;" help "${help}")
string(REPLACE "\n" ";" lines "${help}")
set(flag "")
set(meta "")
set(desc "")
set(count 0)
foreach(line IN LISTS lines)
    if(line MATCHES "^  --([a-z0-9-]+)( (.*))?$")
        set(flag "${CMAKE_MATCH_1}")
        set(meta "${CMAKE_MATCH_3}")
        set(desc "")
    elseif(flag AND line MATCHES "^      \\[([A-Z0-9_]+)(; default: (.*))?\\]$")
        set(env "${CMAKE_MATCH_1}")
        set(def "${CMAKE_MATCH_3}")
        if(def STREQUAL "empty")
            set(def "")
        endif()
        string(APPEND text "\n# --${flag}")
        if(meta)
            string(APPEND text " ${meta}")
        endif()
        string(APPEND text "\n${desc}#${env}=${def}\n")
        math(EXPR count "${count} + 1")
        set(flag "")
    elseif(flag AND line MATCHES "^      (.*)$")
        string(APPEND desc "#   ${CMAKE_MATCH_1}\n")
    endif()
endforeach()
if(count LESS 10)
    message(FATAL_ERROR "default-file.cmake: only ${count} settings found in ${WORKER} --help; "
                        "has its format changed?")
endif()
file(WRITE "${OUT}" "${text}")
