#!/bin/bash
# Context switches (voluntary + involuntary, every thread) of each process so far; run twice around a window and
# divide the difference by the signatures made in it.
# usage: ctx.sh PID... ; prints total voluntary+nonvoluntary context switches over all threads
for p in "$@"; do s=0; for f in /proc/$p/task/*/status; do v=$(awk '/voluntary_ctxt_switches/{s+=$2} END{print s}' $f 2>/dev/null); s=$((s+${v:-0})); done; echo -n "$p:$s "; done; echo
