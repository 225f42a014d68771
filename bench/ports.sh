# Sourced by the benchmarks: a run of free local TCP ports, so that another
# benchmark's nginx running on the machine never answers for ours.
#
#   free_ports COUNT FIRST [FIXED]   FIXED if given (checked), else the first
#                                    base from FIRST (in steps of 10) whose
#                                    COUNT ports all refuse a connection

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

ports_free() {      # COUNT BASE
    local p
    for p in $(seq "$2" $(($2 + $1 - 1))); do port_free "$p" || return 1; done
}

free_ports() {
    local base
    for base in ${3:-$(seq "$2" 10 $(($2 + 400)))}; do
        ports_free "$1" "$base" && { echo "$base"; return 0; }
    done
    echo "no run of $1 free ports from ${3:-$2}" >&2
    return 1
}
