# The policy core: no kernel, no libraries but libyaml. The unit tests and
# the fuzzers link only this list; the Makefile includes it and
# tests/fuzz/run.sh asks for it with `make -s print-core-src`, so a new core
# module is added in one place.
CORE_SRC := $(addprefix src/,sipmsg.c sdp.c edit.c binding.c dialog.c alg.c pkt.c stats.c log.c conf.c state.c mem.c notify.c json.c calllog.c trace.c siphash.c sipframe.c addr.c nat66.c)
