/* rules: divert SIP to our queue. See rules.h.
 *
 * Two backends, chosen once from the configuration:
 *  - iptables (iptables-nft here): our own chain in the mangle table, jumped
 *    to from FORWARD. The nft `queue` statement is not in every kernel
 *    (CONFIG_NFT_QUEUE), the xt NFQUEUE target is. Run as `iptables -w`
 *    processes with argv arrays (no shell), at start and exit only.
 *  - nft: our own table with a forward chain at priority mangle, created
 *    with libnftables in-process (nftcmd.h).
 * Never the queue bypass option: with no daemon on the queue, SIP is
 * dropped rather than passed unrewritten (fail closed).
 *
 * IPv6 (sip.ipv6, on by default): the same rules again, in ip6tables'
 * mangle table or in a table of family ip6 with the same name. A separate
 * ip6 table rather than one inet table: the inet family needs a kernel
 * with IPv6 (NF_TABLES_INET depends on IPV6), and the IPv4 diversion must
 * work on routers built without it. The IPv6 copy is best effort: where it
 * cannot be installed, the daemon runs with IPv4 only and says why
 * (rules_ipv6_off()). That is not failing open: with no NAT66 nothing in an
 * IPv6 message needs rewriting, and what is lost is the media pinholes.
 *
 * The same rules ship as kernel-rules/divert-iptables.sh and
 * kernel-rules/divert-nft.nft for operators who load them themselves;
 * change them together with this file. */
#include "rules.h"
#include "nftcmd.h"

#include "conf.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>


/* iptables chain names are at most 28 characters. */
#define RULES_CHAIN_MAX 29

/* The nft backend's text, in one place (kernel-rules/divert-nft.nft is the
 * same with the table called sipalgd_divert). Port sets and the queue
 * number come in through defines so the body reads like that file. */
static const char rules_nft_fmt[] =
	"define WAN_IF = \"%s\"\n"
	"define SIP_PORTS = { %s }\n"
	"define QUEUE_NUM = %u\n"
	"\n"
	"table %s %s {\n"
	"\t# Before NAT and before the operator's filter decisions\n"
	"\t# (priority mangle): the packet still carries private addresses.\n"
	"\tchain divert {\n"
	"\t\ttype filter hook forward priority mangle; policy accept;\n"
	"%s"
	"\t\tiifname $WAN_IF udp dport $SIP_PORTS %squeue num $QUEUE_NUM\n"
	"\t\tiifname $WAN_IF udp sport $SIP_PORTS %squeue num $QUEUE_NUM\n"
	"\t\toifname $WAN_IF udp dport $SIP_PORTS %squeue num $QUEUE_NUM\n"
	"\t\toifname $WAN_IF udp sport $SIP_PORTS %squeue num $QUEUE_NUM\n"
	"\t}\n"
	"}\n";

/* The fast path (fastpath.h) marks what it rewrote: those packets skip the
 * queue, so the mark test is the chain's first rule. Only while the fast
 * path is in use: otherwise a packet carrying that bit for another reason
 * would bypass the ALG for nothing. */
static int rules_fastpath(const struct conf *c)
{
	return c->fastpath != CONF_FASTPATH_OFF;
}

static uint32_t rules_fastpath_mark(const struct conf *c)
{
	return 1u << (c->fastpath_mark_bit & 31);
}

/* The guard (guard.h) drops forwarded SIP at the WAN egress unless it
 * carries this mark: set on everything we queue, in the rule that queues
 * it (nft) or in the rule just before (iptables: a MARK rule with the same
 * match; the skb mark survives the queue and the forwarding). Only while
 * the guard is in use: otherwise it would only change marks for nothing. */
static int rules_guard(const struct conf *c)
{
	return c->guard != CONF_GUARD_OFF;
}

static uint32_t rules_guard_mark(const struct conf *c)
{
	return 1u << (c->guard_mark_bit & 31);
}

/* Per family: the iptables binary and its restore tool, the nft family. */
static const char *const rules_ipt[2] = { "iptables", "ip6tables" };
static const char *const rules_ipt_restore[2] = { "iptables-restore", "ip6tables-restore" };
static const char *const rules_nft_family[2] = { "ip", "ip6" };

/* The IPv6 copy's state, for rules_ipv6_off() and rules_where(). */
static int rules_v6_on;
static char rules_v6_why[192];
static char rules_v6_warned[192]; /* the reason last logged: warn once */

static int rules_conf_ok(const struct conf *c)
{
	int i;

	if (!conf_name_ok(c->nft_table, sizeof(c->nft_table), 0)) {
		log_err("rules: table name \"%.*s\" must be 1-31 of [A-Za-z0-9_]",
			(int)sizeof(c->nft_table), c->nft_table);
		return 0;
	}
	if (!conf_name_ok(c->wan_if, sizeof(c->wan_if), 1)) {
		log_err("rules: WAN interface name \"%.*s\" is not usable in a rule",
			(int)sizeof(c->wan_if), c->wan_if);
		return 0;
	}
	if (c->n_sip_ports < 1 || c->n_sip_ports > CONF_MAX_PORTS) {
		log_err("rules: %d SIP ports configured, need 1-%d", c->n_sip_ports, CONF_MAX_PORTS);
		return 0;
	}
	for (i = 0; i < c->n_sip_ports; i++) {
		if (c->sip_ports[i] == 0) {
			log_err("rules: SIP port 0 is not a port");
			return 0;
		}
	}
	return 1;
}

/* "sipalgd" -> "SIPALGD", cut to what iptables accepts. */
static void rules_chain_name(const struct conf *c, char *out)
{
	size_t i;

	for (i = 0; i + 1 < RULES_CHAIN_MAX && c->nft_table[i]; i++) {
		char ch = c->nft_table[i];

		out[i] = (ch >= 'a' && ch <= 'z') ? (char)(ch - 'a' + 'A') : ch;
	}
	out[i] = '\0';
}

static void rules_argv_str(char *const argv[], char *buf, size_t len)
{
	size_t off = 0;
	int i;

	buf[0] = '\0';
	for (i = 0; argv[i] && off + 1 < len; i++) {
		int n = snprintf(buf + off, len - off, "%s%s", i ? " " : "", argv[i]);

		if (n < 0)
			break;
		off += (size_t)n;
	}
}

/* Run argv, wait for it. Returns its exit status (0 = success), or -1 when
 * it could not run. `quiet`: its output is not wanted (stale-rule removal,
 * where "no such rule" is the normal answer). Needs SIGCHLD not ignored
 * (waitpid); called at start and exit only, never per packet or call. */
static int rules_run(char *const argv[], int quiet)
{
	pid_t pid;
	int st;

	pid = fork();
	if (pid < 0) {
		log_err("rules: fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
		sigset_t none;
		int i;

		/* The daemon may block signals for its own loop; iptables
		 * must start with a clean mask. */
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (fd >= 0) {
			dup2(fd, STDIN_FILENO);
			dup2(fd, STDOUT_FILENO);
			if (quiet)
				dup2(fd, STDERR_FILENO);
		}
		execvp(argv[0], argv);
		/* A daemon's PATH may lack the sbin directories. */
		for (i = 0; i < 2; i++) {
			char path[64];

			snprintf(path, sizeof(path), "%s/%s", i ? "/sbin" : "/usr/sbin", argv[0]);
			execv(path, argv);
		}
		_exit(127);
	}
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR) {
			log_err("rules: waitpid: %s", strerror(errno));
			return -1;
		}
	}
	if (WIFEXITED(st))
		return WEXITSTATUS(st) == 127 ? -1 : WEXITSTATUS(st);
	return -1;
}

/* -w 10: wait for the xtables lock, but not forever. */
#define IPT(f, ...) ((char *const[]){ (char *)rules_ipt[f], "-w", "10", "-t", "mangle", __VA_ARGS__, NULL })

static int rules_run_logged(char *const argv[])
{
	char cmd[512];
	int ret = rules_run(argv, 0);

	if (ret != 0) {
		rules_argv_str(argv, cmd, sizeof(cmd));
		log_err("rules: `%s` failed (%s %d)", cmd,
			ret < 0 ? "could not run," : "exit status", ret);
	}
	return ret;
}

static void rules_iptables_remove(const struct conf *c, enum rules_family f)
{
	char chain[RULES_CHAIN_MAX];
	int i;

	rules_chain_name(c, chain);
	/* Every copy of our jump (a crash between two starts may have left
	 * more than one), then our chain; nothing else is touched. */
	for (i = 0; i < 16; i++)
		if (rules_run(IPT(f, "-D", "FORWARD", "-p", "udp", "-j", chain), 1) != 0)
			break;
	rules_run(IPT(f, "-F", chain), 1);
	rules_run(IPT(f, "-X", chain), 1);
}

static int rules_iptables_install(const struct conf *c, enum rules_family f)
{
	static const char *const dir_if[2] = { "-i", "-o" };
	static const char *const dir_port[2] = { "--dport", "--sport" };
	char chain[RULES_CHAIN_MAX], port[8], qnum[8], gmark[24];
	int p, d, k;

	rules_chain_name(c, chain);
	snprintf(qnum, sizeof(qnum), "%u", c->queue_num);
	snprintf(gmark, sizeof(gmark), "0x%x/0x%x", rules_guard_mark(c), rules_guard_mark(c));
	rules_iptables_remove(c, f);
	if (rules_run_logged(IPT(f, "-N", chain)) != 0)
		goto fail;
	if (rules_fastpath(c)) {
		char mark[24];

		snprintf(mark, sizeof(mark), "0x%x/0x%x", rules_fastpath_mark(c), rules_fastpath_mark(c));
		if (rules_run_logged(IPT(f, "-A", chain, "-m", "mark", "--mark", mark, "-j", "RETURN")) != 0)
			goto fail;
	}
	for (p = 0; p < c->n_sip_ports; p++) {
		snprintf(port, sizeof(port), "%u", c->sip_ports[p]);
		for (d = 0; d < 2; d++) {
			for (k = 0; k < 2; k++) {
				/* Plain --dport/--sport rather than multiport:
				 * xt_multiport is an extra package on OpenWrt. */
				if (rules_guard(c) &&
				    rules_run_logged(IPT(f, "-A", chain, (char *)dir_if[d], (char *)c->wan_if,
							 "-p", "udp", (char *)dir_port[k], port,
							 "-j", "MARK", "--set-xmark", gmark)) != 0)
					goto fail;
				if (rules_run_logged(IPT(f, "-A", chain, (char *)dir_if[d], (char *)c->wan_if,
							 "-p", "udp", (char *)dir_port[k], port,
							 "-j", "NFQUEUE", "--queue-num", qnum)) != 0)
					goto fail;
			}
		}
	}
	/* First in FORWARD: SIP must reach us before any accept. */
	if (rules_run_logged(IPT(f, "-I", "FORWARD", "1", "-p", "udp", "-j", chain)) != 0)
		goto fail;
	log_info("rules: %s mangle FORWARD -> %s: SIP on %s to queue %u",
		 rules_ipt[f], chain, c->wan_if, c->queue_num);
	return 0;
fail:
	rules_iptables_remove(c, f);
	return -1;
}

/* The repair path (fwwatch): the chain and its rules, and the jump when it
 * is gone, as one `iptables-restore --noflush` process: one process and one
 * nf_tables transaction instead of nine (tens of ms of leak window less).
 * Declaring the chain creates it, or flushes a partial copy. */
static int rules_iptables_repair(const struct conf *c, enum rules_family f, int need_jump)
{
	static const char *const dir_if[2] = { "-i", "-o" };
	static const char *const dir_port[2] = { "--dport", "--sport" };
	const char *tool = rules_ipt_restore[f];
	char chain[RULES_CHAIN_MAX], text[8192];
	size_t off = 0;
	int p, d, k, fds[2], st;
	pid_t pid;

	rules_chain_name(c, chain);
	off += (size_t)snprintf(text + off, sizeof(text) - off, "*mangle\n:%s - [0:0]\n", chain);
	if (rules_fastpath(c))
		off += (size_t)snprintf(text + off, sizeof(text) - off, "-A %s -m mark --mark 0x%x/0x%x -j RETURN\n",
					chain, rules_fastpath_mark(c), rules_fastpath_mark(c));
	for (p = 0; p < c->n_sip_ports; p++)
		for (d = 0; d < 2; d++)
			for (k = 0; k < 2; k++) {
				if (rules_guard(c))
					off += (size_t)snprintf(text + off, sizeof(text) - off,
						"-A %s %s %s -p udp %s %u -j MARK --set-xmark 0x%x/0x%x\n",
						chain, dir_if[d], c->wan_if, dir_port[k], c->sip_ports[p],
						rules_guard_mark(c), rules_guard_mark(c));
				off += (size_t)snprintf(text + off, sizeof(text) - off,
					"-A %s %s %s -p udp %s %u -j NFQUEUE --queue-num %u\n",
					chain, dir_if[d], c->wan_if, dir_port[k], c->sip_ports[p], c->queue_num);
			}
	if (need_jump)
		off += (size_t)snprintf(text + off, sizeof(text) - off, "-I FORWARD 1 -p udp -j %s\n", chain);
	off += (size_t)snprintf(text + off, sizeof(text) - off, "COMMIT\n");
	if (off >= sizeof(text))
		return -1; /* cannot happen: CONF_MAX_PORTS bounds it */
	if (pipe2(fds, O_CLOEXEC) < 0)
		return -1;
	pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		sigset_t none;
		int i;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		dup2(fds[0], STDIN_FILENO);
		if (null >= 0)
			dup2(null, STDOUT_FILENO);
		execlp(tool, tool, "-w", "10", "--noflush", (char *)NULL);
		for (i = 0; i < 2; i++) {
			char path[64];

			snprintf(path, sizeof(path), "%s/%s", i ? "/sbin" : "/usr/sbin", tool);
			execl(path, tool, "-w", "10", "--noflush", (char *)NULL);
		}
		_exit(127);
	}
	close(fds[0]);
	/* A few hundred bytes: far below a pipe's buffer, never blocks. */
	if (write(fds[1], text, off) != (ssize_t)off)
		log_err("rules: writing to %s: %s", tool, strerror(errno));
	close(fds[1]);
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR)
			return -1;
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		log_err("rules: %s --noflush of chain %s failed (status %d)", tool, chain,
			WIFEXITED(st) ? WEXITSTATUS(st) : -1);
		return -1;
	}
	return 0;
}

static void rules_nft_remove(const struct conf *c, enum rules_family f)
{
	char text[160], err[1];

	snprintf(text, sizeof(text), "add table %s %s_divert\ndelete table %s %s_divert\n",
		 rules_nft_family[f], c->nft_table, rules_nft_family[f], c->nft_table);
	nftcmd_run(text, err, 0);
}

/* `why`: where to say why an IPv6 table was refused (NULL: log it). */
static int rules_nft_install(const struct conf *c, enum rules_family f, char *why, size_t whylen)
{
	char ports[CONF_MAX_PORTS * 7 + 1], table[48], text[sizeof(rules_nft_fmt) + 512], mark[64] = "";
	char gmark[48] = "";
	char err[1024];
	size_t off = 0;
	int i;

	for (i = 0; i < c->n_sip_ports; i++)
		off += (size_t)snprintf(ports + off, sizeof(ports) - off, "%s%u",
					i ? ", " : "", c->sip_ports[i]);
	snprintf(table, sizeof(table), "%s_divert", c->nft_table);
	if (rules_fastpath(c))
		snprintf(mark, sizeof(mark), "\t\tmeta mark & 0x%08x == 0x%08x return\n",
			 rules_fastpath_mark(c), rules_fastpath_mark(c));
	if (rules_guard(c))
		snprintf(gmark, sizeof(gmark), "meta mark set meta mark | 0x%08x ", rules_guard_mark(c));
	snprintf(text, sizeof(text), rules_nft_fmt, c->wan_if, ports, c->queue_num,
		 rules_nft_family[f], table, mark, gmark, gmark, gmark, gmark);
	/* Stale copy first, separately: if creating fails below, no old
	 * table is left queueing to a queue nobody reads. */
	rules_nft_remove(c, f);
	if (nftcmd_run(text, err, sizeof(err)) < 0) {
		if (why) {
			snprintf(why, whylen, "nft table ip6 %s refused: %.120s", table, err);
			return -1;
		}
		/* Without CONFIG_NFT_QUEUE the kernel does not know the queue
		 * expression and the whole table is refused. */
		log_err("rules: nft divert table %s %s could not be created: %s "
			"(a kernel without CONFIG_NFT_QUEUE refuses the queue statement; "
			"use queue.divert: iptables there)", rules_nft_family[f], table, err);
		return -1;
	}
	log_info("rules: nft table %s %s: SIP on %s to queue %u", rules_nft_family[f], table,
		 c->wan_if, c->queue_num);
	return 0;
}

/* Can this router carry IPv6 at all? 1, or 0 with the reason in why. */
static int rules_v6_possible(const struct conf *c, char *why, size_t len)
{
	char v = '0';
	int fd;

	if (!c->sip_ipv6) {
		snprintf(why, len, "sip.ipv6: off");
		return 0;
	}
	fd = open("/proc/sys/net/ipv6/conf/all/disable_ipv6", O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, len, "the kernel has no IPv6 (no /proc/sys/net/ipv6)");
		return 0;
	}
	if (read(fd, &v, 1) != 1)
		v = '0';
	close(fd);
	if (v == '1') {
		/* No IPv6 forwarding can happen: nothing to divert. Enabling
		 * IPv6 later needs a reload (or restart) to divert it. */
		snprintf(why, len, "net.ipv6.conf.all.disable_ipv6=1");
		return 0;
	}
	return 1;
}

/* The IPv6 copy, after the IPv4 one is in. Never fails the start: the
 * state and reason go to rules_v6_on / rules_v6_why, logged once. */
static void rules_v6_install(const struct conf *c)
{
	char chain[RULES_CHAIN_MAX];

	rules_v6_on = 0;
	if (!rules_v6_possible(c, rules_v6_why, sizeof(rules_v6_why))) {
		/* A stale copy from a run with IPv6 goes all the same. */
		if (c->divert == CONF_DIVERT_NFT)
			rules_nft_remove(c, RULES_IP6);
		else
			rules_iptables_remove(c, RULES_IP6);
	} else if (c->divert == CONF_DIVERT_NFT) {
		if (rules_nft_install(c, RULES_IP6, rules_v6_why, sizeof(rules_v6_why)) == 0)
			rules_v6_on = 1;
	} else {
		/* Ask quietly first whether ip6tables runs and has a mangle
		 * table: "no ip6tables" is one warning, not a page of errors. */
		int r;

		rules_chain_name(c, chain);
		rules_iptables_remove(c, RULES_IP6);
		r = rules_run(IPT(RULES_IP6, "-N", chain), 1);
		if (r < 0) {
			snprintf(rules_v6_why, sizeof(rules_v6_why), "no ip6tables program");
		} else if (r != 0) {
			snprintf(rules_v6_why, sizeof(rules_v6_why), "ip6tables -t mangle refused "
				 "(exit %d: no ip6_tables/ip6table_mangle module?)", r);
		} else {
			rules_run(IPT(RULES_IP6, "-X", chain), 1);
			if (rules_iptables_install(c, RULES_IP6) == 0)
				rules_v6_on = 1;
			else
				snprintf(rules_v6_why, sizeof(rules_v6_why),
					 "ip6tables refused the diversion (see the log)");
		}
	}
	if (rules_v6_on) {
		rules_v6_why[0] = '\0';
		rules_v6_warned[0] = '\0';
		return;
	}
	if (strcmp(rules_v6_warned, rules_v6_why)) {
		snprintf(rules_v6_warned, sizeof(rules_v6_warned), "%s", rules_v6_why);
		/* The operator's own choice is news, not a warning. */
		if (!c->sip_ipv6)
			log_info("rules: SIP over IPv6 is not diverted (sip.ipv6: off)");
		else
			log_warn("rules: SIP over IPv6 is not diverted (%s): IPv6 calls get no media "
				 "pinholes; IPv4 is diverted as usual", rules_v6_why);
	}
}

const char *rules_ipv6_off(void)
{
	return rules_v6_why[0] ? rules_v6_why : NULL;
}

int rules_install(const struct conf *c)
{
	int ret;

	if (!rules_conf_ok(c))
		return -1;
	if (c->divert == CONF_DIVERT_NFT)
		ret = rules_nft_install(c, RULES_IP4, NULL, 0);
	else
		ret = rules_iptables_install(c, RULES_IP4);
	if (ret == 0)
		rules_v6_install(c);
	return ret;
}

int rules_repair(const struct conf *c, enum rules_family f, int need_jump)
{
	if (!rules_conf_ok(c))
		return -1;
	if (c->divert == CONF_DIVERT_NFT)
		return rules_nft_install(c, f, NULL, 0);
	/* Fall back on the start-up path (processes, slower) if the restore
	 * tool is missing or refuses. */
	if (rules_iptables_repair(c, f, need_jump) == 0)
		return 0;
	return rules_iptables_install(c, f);
}

int rules_where(const struct conf *c, enum rules_family f, struct rules_where *w)
{
	memset(w, 0, sizeof(*w));
	if (!rules_conf_ok(c) || (f == RULES_IP6 && !rules_v6_on))
		return -1;
	w->nfproto = f == RULES_IP6 ? 10 /* NFPROTO_IPV6 */ : 2 /* NFPROTO_IPV4 */;
	/* Per direction (in/out the WAN) and port side (dport/sport): one rule
	 * per SIP port with iptables (two with the guard: MARK, then NFQUEUE),
	 * one rule naming the port set with nft (which marks and queues in
	 * one); and the fast path's mark test first when it is in use. */
	w->nrules = (c->divert == CONF_DIVERT_NFT ? 4 : 4 * c->n_sip_ports * (1 + rules_guard(c))) +
		    rules_fastpath(c);
	if (c->divert == CONF_DIVERT_NFT) {
		snprintf(w->table, sizeof(w->table), "%s_divert", c->nft_table);
		snprintf(w->chain, sizeof(w->chain), "divert");
		return 0;
	}
	snprintf(w->table, sizeof(w->table), "mangle");
	rules_chain_name(c, w->chain);
	snprintf(w->from, sizeof(w->from), "FORWARD");
	return 0;
}

void rules_remove(const struct conf *c)
{
	if (!rules_conf_ok(c))
		return;
	/* Both families, whatever the state: a copy a previous run left. */
	if (c->divert == CONF_DIVERT_NFT) {
		rules_nft_remove(c, RULES_IP4);
		rules_nft_remove(c, RULES_IP6);
	} else {
		rules_iptables_remove(c, RULES_IP4);
		rules_iptables_remove(c, RULES_IP6);
	}
}
