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
	"table ip %s {\n"
	"\t# Before NAT and before the operator's filter decisions\n"
	"\t# (priority mangle): the packet still carries private addresses.\n"
	"\tchain divert {\n"
	"\t\ttype filter hook forward priority mangle; policy accept;\n"
	"%s"
	"\t\tiifname $WAN_IF udp dport $SIP_PORTS queue num $QUEUE_NUM\n"
	"\t\tiifname $WAN_IF udp sport $SIP_PORTS queue num $QUEUE_NUM\n"
	"\t\toifname $WAN_IF udp dport $SIP_PORTS queue num $QUEUE_NUM\n"
	"\t\toifname $WAN_IF udp sport $SIP_PORTS queue num $QUEUE_NUM\n"
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

static const char *const rules_iptables_paths[] = { "/usr/sbin/iptables", "/sbin/iptables" };

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
		size_t i;

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
		for (i = 0; i < sizeof(rules_iptables_paths) / sizeof(rules_iptables_paths[0]); i++)
			execv(rules_iptables_paths[i], argv);
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
#define IPT(...) ((char *const[]){ "iptables", "-w", "10", "-t", "mangle", __VA_ARGS__, NULL })

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

static void rules_iptables_remove(const struct conf *c)
{
	char chain[RULES_CHAIN_MAX];
	int i;

	rules_chain_name(c, chain);
	/* Every copy of our jump (a crash between two starts may have left
	 * more than one), then our chain; nothing else is touched. */
	for (i = 0; i < 16; i++)
		if (rules_run(IPT("-D", "FORWARD", "-p", "udp", "-j", chain), 1) != 0)
			break;
	rules_run(IPT("-F", chain), 1);
	rules_run(IPT("-X", chain), 1);
}

static int rules_iptables_install(const struct conf *c)
{
	static const char *const dir_if[2] = { "-i", "-o" };
	static const char *const dir_port[2] = { "--dport", "--sport" };
	char chain[RULES_CHAIN_MAX], port[8], qnum[8];
	int p, d, k;

	rules_chain_name(c, chain);
	snprintf(qnum, sizeof(qnum), "%u", c->queue_num);
	rules_iptables_remove(c);
	if (rules_run_logged(IPT("-N", chain)) != 0)
		goto fail;
	if (rules_fastpath(c)) {
		char mark[24];

		snprintf(mark, sizeof(mark), "0x%x/0x%x", rules_fastpath_mark(c), rules_fastpath_mark(c));
		if (rules_run_logged(IPT("-A", chain, "-m", "mark", "--mark", mark, "-j", "RETURN")) != 0)
			goto fail;
	}
	for (p = 0; p < c->n_sip_ports; p++) {
		snprintf(port, sizeof(port), "%u", c->sip_ports[p]);
		for (d = 0; d < 2; d++) {
			for (k = 0; k < 2; k++) {
				/* Plain --dport/--sport rather than multiport:
				 * xt_multiport is an extra package on OpenWrt. */
				if (rules_run_logged(IPT("-A", chain, (char *)dir_if[d], (char *)c->wan_if,
							 "-p", "udp", (char *)dir_port[k], port,
							 "-j", "NFQUEUE", "--queue-num", qnum)) != 0)
					goto fail;
			}
		}
	}
	/* First in FORWARD: SIP must reach us before any accept. */
	if (rules_run_logged(IPT("-I", "FORWARD", "1", "-p", "udp", "-j", chain)) != 0)
		goto fail;
	log_info("rules: iptables mangle FORWARD -> %s: SIP on %s to queue %u",
		 chain, c->wan_if, c->queue_num);
	return 0;
fail:
	rules_iptables_remove(c);
	return -1;
}

/* The repair path (fwwatch): the chain and its rules, and the jump when it
 * is gone, as one `iptables-restore --noflush` process: one process and one
 * nf_tables transaction instead of nine (tens of ms of leak window less).
 * Declaring the chain creates it, or flushes a partial copy. */
static int rules_iptables_repair(const struct conf *c, int need_jump)
{
	static const char *const dir_if[2] = { "-i", "-o" };
	static const char *const dir_port[2] = { "--dport", "--sport" };
	static const char *const paths[] = { "/usr/sbin/iptables-restore", "/sbin/iptables-restore" };
	char chain[RULES_CHAIN_MAX], text[4096];
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
			for (k = 0; k < 2; k++)
				off += (size_t)snprintf(text + off, sizeof(text) - off,
					"-A %s %s %s -p udp %s %u -j NFQUEUE --queue-num %u\n",
					chain, dir_if[d], c->wan_if, dir_port[k], c->sip_ports[p], c->queue_num);
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
		size_t i;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		dup2(fds[0], STDIN_FILENO);
		if (null >= 0)
			dup2(null, STDOUT_FILENO);
		execlp("iptables-restore", "iptables-restore", "-w", "10", "--noflush", (char *)NULL);
		for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
			execl(paths[i], "iptables-restore", "-w", "10", "--noflush", (char *)NULL);
		_exit(127);
	}
	close(fds[0]);
	/* A few hundred bytes: far below a pipe's buffer, never blocks. */
	if (write(fds[1], text, off) != (ssize_t)off)
		log_err("rules: writing to iptables-restore: %s", strerror(errno));
	close(fds[1]);
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR)
			return -1;
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		log_err("rules: iptables-restore --noflush of chain %s failed (status %d)", chain,
			WIFEXITED(st) ? WEXITSTATUS(st) : -1);
		return -1;
	}
	return 0;
}

static void rules_nft_remove(const struct conf *c)
{
	char text[160], err[1];

	snprintf(text, sizeof(text), "add table ip %s_divert\ndelete table ip %s_divert\n",
		 c->nft_table, c->nft_table);
	nftcmd_run(text, err, 0);
}

static int rules_nft_install(const struct conf *c)
{
	char ports[CONF_MAX_PORTS * 7 + 1], table[48], text[sizeof(rules_nft_fmt) + 320], mark[64] = "";
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
	snprintf(text, sizeof(text), rules_nft_fmt, c->wan_if, ports, c->queue_num, table, mark);
	/* Stale copy first, separately: if creating fails below, no old
	 * table is left queueing to a queue nobody reads. */
	rules_nft_remove(c);
	if (nftcmd_run(text, err, sizeof(err)) < 0) {
		/* Without CONFIG_NFT_QUEUE the kernel does not know the queue
		 * expression and the whole table is refused. */
		log_err("rules: nft divert table ip %s could not be created: %s "
			"(a kernel without CONFIG_NFT_QUEUE refuses the queue statement; "
			"use queue.divert: iptables there)", table, err);
		return -1;
	}
	log_info("rules: nft table ip %s: SIP on %s to queue %u", table, c->wan_if, c->queue_num);
	return 0;
}

int rules_install(const struct conf *c)
{
	if (!rules_conf_ok(c))
		return -1;
	if (c->divert == CONF_DIVERT_NFT)
		return rules_nft_install(c);
	return rules_iptables_install(c);
}

int rules_repair(const struct conf *c, int need_jump)
{
	if (!rules_conf_ok(c))
		return -1;
	if (c->divert == CONF_DIVERT_NFT)
		return rules_nft_install(c);
	/* Fall back on the start-up path (processes, slower) if the restore
	 * tool is missing or refuses. */
	if (rules_iptables_repair(c, need_jump) == 0)
		return 0;
	return rules_iptables_install(c);
}

int rules_where(const struct conf *c, struct rules_where *w)
{
	memset(w, 0, sizeof(*w));
	if (!rules_conf_ok(c))
		return -1;
	/* Per direction (in/out the WAN) and port side (dport/sport): one rule
	 * per SIP port with iptables, one rule naming the port set with nft;
	 * and the fast path's mark test first when it is in use. */
	w->nrules = (c->divert == CONF_DIVERT_NFT ? 4 : 4 * c->n_sip_ports) + rules_fastpath(c);
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
	if (c->divert == CONF_DIVERT_NFT)
		rules_nft_remove(c);
	else
		rules_iptables_remove(c);
}
