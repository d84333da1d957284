# sipalgd: plain GNU make. `make`, `make check`, `make install PREFIX=/usr DESTDIR=...`
PREFIX  ?= /usr/local
SBINDIR ?= $(PREFIX)/sbin
SYSCONFDIR ?= /etc
DATADIR ?= $(PREFIX)/share/sipalgd
MANDIR  ?= $(PREFIX)/share/man
UNITDIR ?= $(PREFIX)/lib/systemd/system
CC      ?= cc
PKG_CONFIG ?= pkg-config
PKGS    := libnetfilter_queue libmnl libnftnl libnetfilter_conntrack yaml-0.1

# ---- build flags ---------------------------------------------------------
# CFLAGS/CPPFLAGS/LDFLAGS belong to whoever builds (a packager's `make
# CFLAGS=-Os` replaces them whole); what the code needs to compile at all is
# in SIPALGD_CFLAGS, appended after them, so it cannot be lost. Hardening is
# on by default; a packager whose toolchain already hardens (dpkg-buildflags,
# OpenWrt's PKG_SSP/PKG_FORTIFY_SOURCE) sets HARDEN_CFLAGS= HARDEN_LDFLAGS=.
CFLAGS  ?= -O2 -g
HARDEN_CFLAGS  ?= -D_FORTIFY_SOURCE=3 -fstack-protector-strong -fPIE
HARDEN_LDFLAGS ?= -pie -Wl,-z,relro,-z,now
VERSION := $(shell cat VERSION 2>/dev/null || echo unknown)
SIPALGD_CFLAGS := -std=gnu11 -Wall -Wextra -Wshadow -Wno-unused-parameter -D_GNU_SOURCE -MMD -MP \
	-DSIPALGD_VERSION='"$(VERSION)"'
# libnftables: headers only; nftcmd.c loads it at run time (see nftcmd.h).
SIPALGD_CFLAGS += $(shell $(PKG_CONFIG) --cflags $(PKGS) libnftables 2>/dev/null)
SIPALGD_LDLIBS := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)
# The tc fast path (docs/fastpath.md): FASTPATH=1 builds bpf/sipfast.bpf.c
# and links libbpf into src/fastpath.c; FASTPATH=0 builds fastpath.c as
# stubs (musl/OpenWrt, or no clang/bpftool/libbpf); auto: 1 when all three
# are there.
FASTPATH ?= auto
BPFTOOL ?= $(shell command -v bpftool 2>/dev/null || echo /usr/sbin/bpftool)
BPF_CLANG ?= clang
ifeq ($(FASTPATH),auto)
FASTPATH := $(shell $(PKG_CONFIG) --exists libbpf 2>/dev/null && command -v $(BPF_CLANG) >/dev/null 2>&1 && \
	test -x $(BPFTOOL) && echo 1 || echo 0)
endif
ifeq ($(FASTPATH),1)
SIPALGD_CFLAGS += -DSIPALGD_FASTPATH=1 -Ibuild $(shell $(PKG_CONFIG) --cflags libbpf 2>/dev/null)
SIPALGD_LDLIBS += $(shell $(PKG_CONFIG) --libs libbpf 2>/dev/null)
endif
ALL_CFLAGS = $(HARDEN_CFLAGS) $(CPPFLAGS) $(CFLAGS) $(SIPALGD_CFLAGS)
ALL_LDFLAGS = $(HARDEN_LDFLAGS) $(LDFLAGS)
# ---- end of build flags ---------------------------------------------------

ifeq ($(V),1)
Q :=
else
Q := @
endif

B := build
DAEMON_SRC := $(filter-out src/sipalgctl.c src/main.c,$(wildcard src/*.c))
DAEMON_OBJ := $(DAEMON_SRC:src/%.c=$(B)/%.o)
include src/core.mk
CORE_OBJ := $(CORE_SRC:src/%.c=$(B)/%.o)

all: sipalgd sipalgctl

sipalgd: $(DAEMON_OBJ) $(B)/main.o
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(SIPALGD_LDLIBS) $(LDLIBS)

sipalgctl: $(B)/sipalgctl.o
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/%.o: src/%.c | $(B)
	@echo "  CC      $@"
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

# The BPF object and its skeleton (the object's bytes embedded in a header
# that only fastpath.c includes).
$(B)/sipfast.bpf.o: bpf/sipfast.bpf.c bpf/sipfast.h | $(B)
	@echo "  BPF     $@"
	$(Q)$(BPF_CLANG) -O2 -g -target bpf -I/usr/include/$(shell gcc -dumpmachine) -c -o $@ $<

$(B)/sipfast.skel.h: $(B)/sipfast.bpf.o
	@echo "  SKEL    $@"
	$(Q)$(BPFTOOL) gen skeleton $< name sipfast > $@.tmp && mv $@.tmp $@

# The WAN egress guard (src/guard.c): built and skipped with the fast path.
$(B)/sipguard.bpf.o: bpf/sipguard.bpf.c bpf/sipguard.h | $(B)
	@echo "  BPF     $@"
	$(Q)$(BPF_CLANG) -O2 -g -target bpf -I/usr/include/$(shell gcc -dumpmachine) -c -o $@ $<

$(B)/sipguard.skel.h: $(B)/sipguard.bpf.o
	@echo "  SKEL    $@"
	$(Q)$(BPFTOOL) gen skeleton $< name sipguard > $@.tmp && mv $@.tmp $@

ifeq ($(FASTPATH),1)
$(B)/fastpath.o: $(B)/sipfast.skel.h
$(B)/guard.o: $(B)/sipguard.skel.h
endif

# -V prints the version: rebuild what shows it when VERSION changes.
$(B)/main.o $(B)/sipalgctl.o: VERSION

print-core-src:
	@echo $(CORE_SRC)

$(B):
	$(Q)mkdir -p $@

# Everything a fresh Debian 12 machine needs to build, test and run the demo.
# (libosip2-dev only for the tests: sipmsg.c/sdp.c parse by hand and the
# daemon never links libosip2; osipdiff_test and the osipdiff fuzz target
# use it as the scanner's second opinion. No tshark: no test reads a
# capture.)
DEBS := build-essential pkg-config clang libbpf-dev bpftool libnetfilter-queue-dev libmnl-dev \
	libyaml-dev libnftnl-dev libnftables-dev libnetfilter-conntrack-dev libcmocka-dev \
	libosip2-dev \
	sip-tester nftables iptables conntrack iproute2 kmod python3 \
	python3-prometheus-client ufw baresip-core kamailio tcpdump
# kamailio is the real-UA lab's registrar, run by the lab inside its own
# namespace; on a systemd host its package would also start the system's
# kamailio on port 5060. When deps is what installed it, that service is
# stopped and disabled again (an operator's own kamailio is left alone).
deps:
	DEBIAN_FRONTEND=noninteractive apt-get update -qq
	@had=$$(dpkg-query -W -f='$${Status}' kamailio 2>/dev/null | grep -c 'ok installed'); \
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(DEBS) && \
	if [ "$$had" = 0 ] && [ -d /run/systemd/system ]; then \
		systemctl disable --now kamailio.service >/dev/null 2>&1 || true; \
	fi

# ---- tests -------------------------------------------------------------
UNIT_SRC := $(wildcard tests/unit/*_test.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(B)/unit/%)
SAN_BIN  := $(UNIT_SRC:tests/unit/%.c=$(B)/unit-san/%)
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

$(B)/unit/%: tests/unit/%.c $(CORE_SRC) tests/unit/stubs.c | $(B)
	@mkdir -p $(dir $@)
	@echo "  TEST-CC $@"
	$(Q)$(CC) $(filter-out -MMD -MP,$(ALL_CFLAGS)) $(ALL_LDFLAGS) -Isrc -o $@ $< $(CORE_SRC) tests/unit/stubs.c -lcmocka -lyaml

$(B)/unit-san/%: tests/unit/%.c $(CORE_SRC) tests/unit/stubs.c | $(B)
	@mkdir -p $(dir $@)
	@echo "  SAN-CC  $@"
	$(Q)clang -O1 -g $(SANFLAGS) -std=gnu11 -D_GNU_SOURCE -Isrc -o $@ $< $(CORE_SRC) tests/unit/stubs.c -lcmocka -lyaml

# ---- the tc fast path (issue 11): the program and its agreement test ----
$(B)/fastpath/agree: tests/fastpath/agree.c $(CORE_SRC) tests/unit/stubs.c bpf/sipfast.h | $(B)
	@mkdir -p $(dir $@)
	@echo "  TEST-CC $@"
	$(Q)$(CC) $(filter-out -MMD -MP,$(ALL_CFLAGS)) $(ALL_LDFLAGS) -Isrc -Itests/unit -o $@ $< $(CORE_SRC) tests/unit/stubs.c -lbpf -lyaml

# needs root (bpf()); prints SKIP and succeeds only where bpf() is refused
fastpath-agree: $(B)/fastpath/agree $(B)/sipfast.bpf.o
	@$(B)/fastpath/agree $(B)/sipfast.bpf.o

# ns per packet of the program, per case (BPF_PROG_TEST_RUN; root, ~10 s)
fastpath-cost: $(B)/fastpath/agree $(B)/sipfast.bpf.o
	@$(B)/fastpath/agree $(B)/sipfast.bpf.o --cost

# the program on the lab router's forwarding path (netns, ~2 s; root)
fastpath-path: $(B)/sipfast.bpf.o
	@tests/fastpath/path.sh $(B)/sipfast.bpf.o

# The differential test against libosip2 (issue 13): the only tests that
# link it; the daemon never does (docs/performance.md says why).
OSIP_LIBS := -losipparser2
OSIPDIFF_SRC := tests/osip/osipdiff.c tests/osip/osipdiff_osip.c
$(B)/unit/osipdiff_test: tests/unit/osipdiff_test.c $(OSIPDIFF_SRC) tests/osip/osipdiff.h tests/osip/osipdiff_view.h $(CORE_SRC) tests/unit/stubs.c | $(B)
	@mkdir -p $(dir $@)
	@echo "  TEST-CC $@"
	$(Q)$(CC) $(filter-out -MMD -MP,$(ALL_CFLAGS)) $(ALL_LDFLAGS) -Isrc -o $@ $< $(OSIPDIFF_SRC) $(CORE_SRC) tests/unit/stubs.c -lcmocka -lyaml $(OSIP_LIBS)

$(B)/unit-san/osipdiff_test: tests/unit/osipdiff_test.c $(OSIPDIFF_SRC) tests/osip/osipdiff.h tests/osip/osipdiff_view.h $(CORE_SRC) tests/unit/stubs.c | $(B)
	@mkdir -p $(dir $@)
	@echo "  SAN-CC  $@"
	$(Q)clang -O1 -g $(SANFLAGS) -std=gnu11 -D_GNU_SOURCE -Isrc -o $@ $< $(OSIPDIFF_SRC) $(CORE_SRC) tests/unit/stubs.c -lcmocka -lyaml $(OSIP_LIBS)

# Parse time per message, ours vs libosip2 (docs/performance.md): built
# with the daemon's flags, run by hand, never asserted.
$(B)/osipbench: tests/osip/osipbench.c $(OSIPDIFF_SRC) tests/osip/osipdiff.h tests/osip/osipdiff_view.h $(CORE_SRC) tests/unit/stubs.c | $(B)
	@echo "  CC      $@"
	$(Q)$(CC) $(filter-out -MMD -MP,$(ALL_CFLAGS)) $(ALL_LDFLAGS) -Isrc -o $@ $< $(OSIPDIFF_SRC) $(CORE_SRC) tests/unit/stubs.c -lyaml $(OSIP_LIBS)

osip-bench: $(B)/osipbench
	@$(B)/osipbench

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
	@LAB_V6_PREFIX=0 FLOWS="v6_register v6_call v6_early v6_reinvite v6_fork v6_nat66_call v6_ula_unnated" tests/netns/run.sh
	@ALG=kernel tests/netns/run.sh

# Hostile input (malformed corpus, torture messages, NAT Slipstreaming
# rules, a bounded flood) and faults (kill -9 mid-call, SIGHUP, the daemon
# under ASan) against the real daemon in namespaces.
hostile: all
	@tests/netns/hostile.sh

faults: all
	@tests/netns/faults.sh

# SIGHUP in the field: sip.ports, log.level, a limit, log.syslog applied for
# real, a restart-only key named and kept (about 30 s).
field-reload: all
	@tests/netns/field-reload.sh

# The operator's view: sipalgctl --json / metrics / call on real failures.
ops-lab: all
	@tests/netns/ops.sh

# The WAN address changes under running calls (issue 8): removed and
# replaced, the interface re-created, no address, SIGHUP public_address.
# wan6.sh: the WAN's IPv6 address for wan.masquerade6 followed (kept,
# replaced, never temporary/deprecated/LAN, none) (about 5 s).
field-wan: all
	@tests/netns/field-wan.sh
	@tests/netns/wan6.sh

# A PBX trunk (one LAN address, ~1,000 calls up, 1,000 calls/s) with the
# shipped limits: every INVITE rewritten, every stream a pinhole, 0 failed.
field-trunk: all
	@tests/netns/field-trunk.sh

# SIP over TCP through the relay (sip.tcp): a call, a registration and a
# request over the phone's connection, byte-split messages, kill -9 fails
# closed (about 15 s).
tcp-lab: all
	@tests/netns/tcp.sh
	@tests/netns/tcp6.sh

# A firewall reload repairs itself (nft flush ruleset, iptables -t mangle -F,
# a deleted or swapped table) with calls up and SIP flowing; the kernel SIP
# helper on the same traffic is detected.
field-repair: all
	@tests/netns/field-repair.sh

# The tc fast path's loader: attached by TCX at wan and lan, counters add up,
# maps = bindings (also after a restart), kill -9 leaves nothing and SIP
# stops, queue.fastpath: off attaches nothing (about 20 s).
fastpath-lab: all
	@tests/netns/fastpath.sh

# A new user's router, not the lab's: bridges for WAN and LAN, a second LAN
# subnet, a Debian-style nftables.conf (policy drop), `make install DESTDIR=`
# and the shipped configuration, phones on their own SIP ports, hold with
# c=0.0.0.0, SIP/TCP with the registrar's new connection back, and sipp
# calls while 200 phones refresh short registrations (about 35 s).
newuser-lab: all
	@tests/netns/newuser.sh

# The router's firewall is ufw, Docker's iptables rules or firewalld (each in
# the router's namespace, their files in a private mount namespace): calls,
# the tool's reloads during a held call, the forward-policy warning exactly
# when the media is dropped; a part whose tool is missing is skipped (about
# 100 s). ufw is in deps (its package leaves it disabled);
# firewalld is not: its package starts the service on the host, which then
# owns the host's firewall. On a lab machine: apt-get install firewalld.
fwtools-lab: all
	@tests/netns/fwtools.sh

# The WAN as a PPPoE session (tun stand-in: this kernel has no CONFIG_PPP):
# no link header, MTU 1492, gone and back with another address (about 10 s).
pppoe-lab: all
	@tests/netns/pppoe.sh

# Real third-party user agents: two baresip phones behind the router,
# kamailio (registrar, record-routing proxy, OPTIONS pings) and a third
# baresip on the Internet; calls both ways, hairpin, hold/resume, SRTP,
# ICE, SIP/TCP, REFER; RTP counted at each end, no private literal at the
# provider (about 30 s).
realua-lab: all
	@tests/netns/realua.sh

# A fixed search (seed 1, a fixed number of inputs per target, about a
# minute each here): make check passes or fails the same on every machine.
# FUZZ_SECONDS is only the cap per target.
FUZZ_SECONDS ?= 180
fuzz-short: all
	@FUZZ_SEED=1 FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run.sh

fuzz: all
	@FUZZ_SECONDS=$${FUZZ_SECONDS:-1800} tests/fuzz/run.sh

check: all unit unit-san data kernel fastpath-agree fastpath-path fuzz-short lab hostile faults field-wan field-reload ops-lab field-trunk tcp-lab field-repair fastpath-lab newuser-lab fwtools-lab pppoe-lab realua-lab
	@echo "make check: all stages passed"

bench: all
	@tests/bench/run.sh

demo: all
	@tests/netns/demo.sh

install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(SYSCONFDIR)/sipalgd $(DESTDIR)$(DATADIR)/kernel-rules
	install -m 0755 sipalgd sipalgctl $(DESTDIR)$(SBINDIR)/
	@# The operator's config is theirs: installed once, never overwritten.
	if [ -e $(DESTDIR)$(SYSCONFDIR)/sipalgd/sipalgd.yaml ]; then \
		echo "  keeping $(DESTDIR)$(SYSCONFDIR)/sipalgd/sipalgd.yaml (shipped one: $(DESTDIR)$(DATADIR)/sipalgd.yaml)"; \
	else install -m 0644 conf/sipalgd.yaml $(DESTDIR)$(SYSCONFDIR)/sipalgd/sipalgd.yaml; fi
	install -m 0644 conf/sipalgd.yaml $(DESTDIR)$(DATADIR)/sipalgd.yaml
	@# the .nft files are `#!/usr/sbin/nft -f` scripts: runnable as they are
	install -m 0755 kernel-rules/*.nft $(DESTDIR)$(DATADIR)/kernel-rules/
	install -m 0755 kernel-rules/*.sh $(DESTDIR)$(DATADIR)/kernel-rules/
	install -D -m 0644 contrib/bash-completion/sipalgctl $(DESTDIR)$(PREFIX)/share/bash-completion/completions/sipalgctl
	install -d $(DESTDIR)$(UNITDIR)
	sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
		packaging/systemd/sipalgd.service.in > $(DESTDIR)$(UNITDIR)/sipalgd.service
	if [ -d docs/man ]; then install -d $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5; \
		for m in docs/man/*.8; do [ -f "$$m" ] && install -m 0644 $$m $(DESTDIR)$(MANDIR)/man8/; done; \
		for m in docs/man/*.5; do [ -f "$$m" ] && install -m 0644 $$m $(DESTDIR)$(MANDIR)/man5/; done; fi; true

clean:
	rm -rf $(B) sipalgd sipalgctl

# ---- release and Debian package ------------------------------------------
# make dist: the committed tree (HEAD) as $(DISTDIR)/sipalgd-$(VERSION).tar.gz,
# reproducible (git archive uses the commit time; gzip -n drops the name and
# time), and its sha256 in a .sha256 file next to it (OpenWrt's PKG_HASH).
DISTDIR ?= $(B)/dist
DIST    := $(DISTDIR)/sipalgd-$(VERSION).tar.gz
dist:
	@git diff --quiet HEAD -- 2>/dev/null || echo "dist: warning: uncommitted changes are not in the tarball (it is made from HEAD)" >&2
	@mkdir -p $(DISTDIR)
	git archive --format=tar --prefix=sipalgd-$(VERSION)/ HEAD | gzip -9n > $(DIST).tmp
	@mv $(DIST).tmp $(DIST)
	@cd $(DISTDIR) && sha256sum sipalgd-$(VERSION).tar.gz > sipalgd-$(VERSION).tar.gz.sha256
	@cat $(DIST).sha256

# make deb: dpkg-buildpackage on a copy of the committed tree (the tarball
# above), in $(B)/deb, so the working tree is never written; the .deb files
# land in $(B)/deb. make deb-check: tests/package/deb.sh (build, lintian,
# install/upgrade/remove/purge in a Debian 12 root, a lab call from it).
DEBDIR ?= $(B)/deb
deb: dist
	rm -rf $(DEBDIR) && mkdir -p $(DEBDIR)
	tar -C $(DEBDIR) -xzf $(DIST)
	cd $(DEBDIR)/sipalgd-$(VERSION) && dpkg-buildpackage -us -uc -b
	@ls $(DEBDIR)/*.deb

deb-check:
	@tests/package/deb.sh

# What make deb and the package checks need beyond make deps.
package-deps deb-check-deps:
	@tests/package/deps.sh
# ---- end of release and Debian package -----------------------------------

# ---- container image (packaging/container, docs/container.md) -----------
# `make container`: a Debian 12 base made by mmdebstrap and imported into
# podman (no registry), this build on top; the tag is in build/container/image.
# `make container-check`: the lab's calls through the daemon the image holds,
# run by podman in the lab's router namespace and chrooted in its files.
# (Needs podman, mmdebstrap and runc: apt-get install podman mmdebstrap runc.)
CONTAINER_IMAGE ?= localhost/sipalgd:lab
CONTAINER_BASE  ?= localhost/sipalgd-base:bookworm
container: all
	@CONTAINER_IMAGE=$(CONTAINER_IMAGE) CONTAINER_BASE=$(CONTAINER_BASE) packaging/container/build.sh

container-check: container
	@CONTAINER_REUSE=1 tests/package/container.sh

# The three containers of docs/container.md (phones / gateway / provider), one
# sipp call checked at the provider, in a network namespace made for the run.
container-example: container
	@packaging/container/example/run.sh

.PHONY: container container-check container-example

# ---- OpenWrt package (packaging/openwrt/) ---------------------------------
# musl-check: the daemon, sipalgctl and the unit tests built with musl-gcc
#   against libraries built from source in build/musl/ (cached), tests run.
# openwrt-check: UCI -> YAML on sample configs, shellcheck of the scripts.
# fw4-lab: a call with RTP through a router with fw4's ruleset shape.
# openwrt-makefile: PKG_VERSION/PKG_HASH of the package Makefile from `make dist`.
musl-check:
	@tests/package/musl.sh

openwrt-check: all
	@tests/package/openwrt.sh

fw4-lab: all
	@tests/netns/fw4.sh

openwrt-makefile:
	@packaging/openwrt/update-makefile.sh

.PHONY: musl-check openwrt-check fw4-lab openwrt-makefile

# Every package check (issue 9), in one target that .ci/run calls after
# make check: OpenWrt's scripts and UCI step, the musl build, the fw4-shaped
# lab, the Debian package installed and run in a throwaway root, the image.
package-check: all
	@$(MAKE) -s openwrt-check
	@$(MAKE) -s musl-check
	@$(MAKE) -s fw4-lab
	@$(MAKE) -s deb-check
	@$(MAKE) -s container-check
	@echo "make package-check: all stages passed"

.PHONY: osip-bench fastpath-lab newuser-lab fwtools-lab pppoe-lab realua-lab fastpath-cost fastpath-agree fastpath-path package-deps package-check print-core-src dist deb deb-check deb-check-deps deps all unit unit-san data kernel lab hostile faults field-reload ops-lab field-wan field-trunk tcp-lab field-repair fuzz fuzz-short check bench demo install clean

-include $(wildcard $(B)/*.d)
