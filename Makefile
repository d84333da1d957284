# sipalgd: plain GNU make. `make`, `make check`, `make install PREFIX=/usr DESTDIR=...`
PREFIX  ?= /usr/local
SBINDIR ?= $(PREFIX)/sbin
SYSCONFDIR ?= /etc
DATADIR ?= $(PREFIX)/share/sipalgd
MANDIR  ?= $(PREFIX)/share/man
CC      ?= cc
PKG_CONFIG ?= pkg-config
PKGS    := libnetfilter_queue libmnl libnftnl libnetfilter_conntrack yaml-0.1

CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 -Wall -Wextra -Wshadow -Wno-unused-parameter -D_GNU_SOURCE -MMD -MP
# libnftables: headers only; nftcmd.c loads it at run time (see nftcmd.h).
CFLAGS  += $(shell $(PKG_CONFIG) --cflags $(PKGS) libnftables 2>/dev/null)
LDLIBS  += $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)

ifeq ($(V),1)
Q :=
else
Q := @
endif

B := build
DAEMON_SRC := $(filter-out src/sipalgctl.c src/main.c,$(wildcard src/*.c))
DAEMON_OBJ := $(DAEMON_SRC:src/%.c=$(B)/%.o)
# The policy core: no kernel, no libraries; unit tests and fuzzers link only this.
CORE_SRC := $(addprefix src/,sipmsg.c sdp.c edit.c binding.c dialog.c alg.c pkt.c stats.c log.c conf.c state.c mem.c)
CORE_OBJ := $(CORE_SRC:src/%.c=$(B)/%.o)

all: sipalgd sipalgctl

sipalgd: $(DAEMON_OBJ) $(B)/main.o
	@echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

sipalgctl: $(B)/sipalgctl.o
	@echo "  LD      $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $^

$(B)/%.o: src/%.c | $(B)
	@echo "  CC      $@"
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

$(B):
	$(Q)mkdir -p $@

# Everything a fresh Debian 12 machine needs to build, test and run the demo.
DEBS := build-essential pkg-config clang libnetfilter-queue-dev libmnl-dev libosip2-dev \
	libyaml-dev libnftnl-dev libnftables-dev libnetfilter-conntrack-dev libcmocka-dev \
	sip-tester nftables iptables conntrack iproute2 kmod python3 tshark
deps:
	DEBIAN_FRONTEND=noninteractive apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(DEBS)

# ---- tests -------------------------------------------------------------
UNIT_SRC := $(wildcard tests/unit/*_test.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(B)/unit/%)
SAN_BIN  := $(UNIT_SRC:tests/unit/%.c=$(B)/unit-san/%)
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

$(B)/unit/%: tests/unit/%.c $(CORE_SRC) tests/unit/stubs.c | $(B)
	@mkdir -p $(dir $@)
	@echo "  TEST-CC $@"
	$(Q)$(CC) $(filter-out -MMD -MP,$(CFLAGS)) -Isrc -o $@ $< $(CORE_SRC) tests/unit/stubs.c -lcmocka -lyaml

$(B)/unit-san/%: tests/unit/%.c $(CORE_SRC) tests/unit/stubs.c | $(B)
	@mkdir -p $(dir $@)
	@echo "  SAN-CC  $@"
	$(Q)clang -O1 -g $(SANFLAGS) -std=gnu11 -D_GNU_SOURCE -Isrc -o $@ $< $(CORE_SRC) tests/unit/stubs.c -lcmocka -lyaml

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

unit-san: $(SAN_BIN)
	@set -e; for t in $(SAN_BIN); do echo "== $$t (asan+ubsan)"; \
		ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 $$t; done

data: all
	@tests/data/run.sh

kernel: all
	@tests/kernel/run.sh

# The lab against sipalgd, then the same lab against the kernel's helper,
# where exactly the helper's known failures must show (the lab can fail).
lab: all
	@tests/netns/run.sh
	@ALG=kernel tests/netns/run.sh

# Hostile input (malformed corpus, torture messages, NAT Slipstreaming
# rules, a bounded flood) and faults (kill -9 mid-call, SIGHUP, the daemon
# under ASan) against the real daemon in namespaces.
hostile: all
	@tests/netns/hostile.sh

faults: all
	@tests/netns/faults.sh

# A firewall reload repairs itself (nft flush ruleset, iptables -t mangle -F,
# a deleted or swapped table) with calls up and SIP flowing; the kernel SIP
# helper on the same traffic is detected.
field-repair: all
	@tests/netns/field-repair.sh

FUZZ_SECONDS ?= 60
fuzz-short: all
	@FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run.sh

fuzz: all
	@FUZZ_SECONDS=$${FUZZ_SECONDS:-1800} tests/fuzz/run.sh

check: all unit unit-san data kernel fuzz-short lab hostile faults
	@echo "make check: all stages passed"

bench: all
	@tests/bench/run.sh

demo: all
	@tests/netns/demo.sh

install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(SYSCONFDIR)/sipalgd $(DESTDIR)$(DATADIR)/kernel-rules
	install -m 0755 sipalgd sipalgctl $(DESTDIR)$(SBINDIR)/
	install -m 0644 conf/sipalgd.yaml $(DESTDIR)$(SYSCONFDIR)/sipalgd/sipalgd.yaml
	install -m 0644 kernel-rules/*.nft $(DESTDIR)$(DATADIR)/kernel-rules/
	install -m 0755 kernel-rules/*.sh $(DESTDIR)$(DATADIR)/kernel-rules/
	install -d $(DESTDIR)$(PREFIX)/lib/systemd/system
	sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
		packaging/systemd/sipalgd.service.in > $(DESTDIR)$(PREFIX)/lib/systemd/system/sipalgd.service
	if [ -d docs/man ]; then install -d $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5; \
		for m in docs/man/*.8; do [ -f "$$m" ] && install -m 0644 $$m $(DESTDIR)$(MANDIR)/man8/; done; \
		for m in docs/man/*.5; do [ -f "$$m" ] && install -m 0644 $$m $(DESTDIR)$(MANDIR)/man5/; done; fi; true

clean:
	rm -rf $(B) sipalgd sipalgctl


.PHONY: deps all unit unit-san data kernel lab hostile faults field-repair fuzz fuzz-short check bench demo install clean
-include $(wildcard $(B)/*.d)
