# shellcheck shell=bash
# Other CPythons on this machine to build rebound against, for tests/run and
# tests/bench/run (sourced by both).
#
# rb_other_pythons: one line "MINOR VERSION INTERPRETER" for each of 3.12
# and 3.13 that pyenv keeps, the newest patch release of each, e.g.
#   3.13 3.13.0 /root/.pyenv/versions/3.13.0/bin/python3.13
# and "MINOR - -" for one that is absent. Looks in
# ${PYENV_ROOT:-$HOME/.pyenv}/versions, not through the pyenv shim, which a
# CI shell may not have on PATH.
rb_pythons_dir() {
    echo "${PYENV_ROOT:-$HOME/.pyenv}/versions"
}

rb_other_pythons() {
    local versions minor cand
    versions=$(rb_pythons_dir)
    for minor in 3.12 3.13; do
        local py='' ver=''
        for cand in "$versions/$minor".*/bin/python"$minor"; do
            [[ -x $cand ]] || continue
            local v=${cand#"$versions/"}
            v=${v%%/*}
            [[ $v =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || continue # not 3.13.0t, 3.12-dev
            if [[ -z $ver || $(printf '%s\n%s\n' "$ver" "$v" | sort -V | tail -n 1) == "$v" ]]; then
                py=$cand ver=$v
            fi
        done
        echo "$minor ${ver:--} ${py:--}"
    done
}
