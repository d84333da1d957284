/* conf: YAML configuration -> struct conf.
 *
 * We read libyaml's event stream rather than building a document tree: the
 * schema is at most three levels deep (section -> key -> list of scalars), so
 * a small state machine can reject anything deeper at the first unexpected
 * event. Nothing here recurses, hostile input cannot make us nest, and an
 * alias (the "billion laughs" vector) is refused outright.
 *
 * Parsing writes into a private struct; the caller's struct receives it only
 * when the whole file, including the cross-key checks at the end, is valid.
 * The first problem found is the one reported, as "FILE:LINE: reason". */
#include "conf.h"
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

/* A config file is a few kilobytes; anything this large is a mistake (or a
 * fuzzer), and the cap bounds libyaml's own memory use. */
#define CONF_MAX_BYTES (4u << 20)

enum sect {
	S_WAN, S_LAN, S_SIP, S_QUEUE, S_MEDIA, S_TIMERS, S_LIMITS, S_PATHS, S_LOG,
	S__COUNT
};

static const char *const sect_names[S__COUNT] = {
	"wan", "lan", "sip", "queue", "media", "timers", "limits", "paths", "log",
};

enum kind {
	K_IFNAME,  /* network interface name */
	K_ADDR,    /* IPv4 address, empty = automatic */
	K_CIDRS,   /* list of IPv4 CIDRs */
	K_PORTS,   /* list of UDP ports */
	K_UINT,    /* decimal integer in [min, max] (a uint16_t or uint32_t field) */
	K_BOOL,    /* true | false (an int field) */
	K_ENUM,    /* one of `choices` (an enum field: value = index) */
	K_TABLE,   /* nft table name */
	K_PATH,    /* absolute path shorter than the field */
	K_PREFIX6, /* one IPv6 CIDR (a struct conf_net), empty = none */
};

/* Row indices, for the few places that name one key (the cross-key checks). */
enum key {
	WAN_IF, WAN_PUBLIC, WAN_N66_LAN, WAN_N66_PUB, WAN_MASQ6,
	LAN_NETS,
	SIP_PORTS, SIP_PMIN, SIP_PMAX, SIP_INBOUND, SIP_TCP, SIP_TCP_PORT, SIP_IPV6,
	Q_NUM, Q_MAXLEN, Q_HOLDOFF, Q_BATCH, Q_DIVERT, Q_RTPRIO, Q_FASTPATH, Q_FPMARK, Q_GUARD, Q_GDMARK,
	M_PMIN, M_PMAX, M_PINSRC, M_OTHER,
	T_DIALOG, T_EARLY, T_BIND, T_REG,
	L_BIND, L_DLG, L_PIN, L_PINPP, L_STREAMS, L_RATE, L_TCP, L_TCPPP,
	P_NFT, P_CTL, P_PID, P_STATE,
	LOG_LEVEL, LOG_SYSLOG,
	MODE,
	KEY__COUNT
};

static const char *const ch_inbound[] = { "registrar", "any", NULL };
static const char *const ch_divert[] = { "iptables", "nft", NULL };
static const char *const ch_fastpath[] = { "auto", "on", "off", NULL };
static const char *const ch_guard[] = { "auto", "on", "off", NULL };
static const char *const ch_pinsrc[] = { "peer", "any", NULL };
static const char *const ch_level[] = { "error", "warning", "info", "debug", NULL };
static const char *const ch_mode[] = { "enforce", "observe", NULL };

#define FIELD(f) offsetof(struct conf, f), sizeof(((struct conf *)0)->f)
#define LIVE      CONF_RELOAD_LIVE, CONF_REBUILD_NONE
#define RESTART   CONF_RESTART_ONLY, CONF_REBUILD_NONE
#define REBUILD(w) CONF_RELOAD_REBUILD, CONF_REBUILD_##w

/* The whole schema, one row per key: defaults, parsing, reload and the
 * documentation checks (tests/unit/conf_test.c) are loops over it. A key
 * added here and forgotten in conf/sipalgd.yaml or sipalgd.yaml(5) fails
 * `make unit`. Reload: LIVE fields are read where they are used, so copying
 * them in is enough; REBUILD ones are applied by redoing what was built from
 * them; RESTART ones size, bind or name something made once at start. */
static const struct keydef {
	const char *name;              /* section.key, as written in the docs */
	enum kind kind;
	size_t off, size;              /* the field in struct conf */
	size_t n_off;                  /* K_CIDRS, K_PORTS: the int counting them */
	uint32_t def;                  /* K_UINT, K_BOOL, K_ENUM (index), K_PORTS (one port) */
	const char *def_s;             /* K_IFNAME, K_TABLE, K_PATH; NULL = empty or derived */
	uint32_t min, max;             /* K_UINT, K_PORTS range */
	const char *const *choices;    /* K_ENUM, index = enum value */
	enum conf_reload reload;
	enum conf_rebuild rebuild;
	const char *doc;               /* one line: what it is, and why it reloads so */
} keys[KEY__COUNT] = {
	[WAN_IF]      = { "wan.interface", K_IFNAME, FIELD(wan_if), 0, 0, NULL, 0, 0, NULL, RESTART,
			  "the interface facing the provider (required); the NAT table and the diversion are built on it at start" },
	[WAN_PUBLIC]  = { "wan.public_address", K_ADDR, FIELD(public_ip), 0, 0, NULL, 0, 0, NULL, REBUILD(WAN),
			  "the address the provider sees; empty = the WAN interface's" },
	[WAN_N66_LAN] = { "wan.nat66_lan_prefix", K_PREFIX6, FIELD(nat66_lan), 0, 0, NULL, 0, 0, NULL, RESTART,
			  "IPv6 prefix the router's NAT66 translates (with wan.nat66_public_prefix); calls in progress were translated under it" },
	[WAN_N66_PUB] = { "wan.nat66_public_prefix", K_PREFIX6, FIELD(nat66_pub), 0, 0, NULL, 0, 0, NULL, RESTART,
			  "the public IPv6 prefix wan.nat66_lan_prefix is mapped to, host bits kept; calls in progress were translated under it" },
	[WAN_MASQ6]   = { "wan.masquerade6", K_CIDRS, FIELD(masq6), offsetof(struct conf, n_masq6), 0, NULL, 0, 0, NULL, RESTART,
			  "IPv6 prefixes of lan.networks the router masquerades behind its WAN IPv6 address (masq6); the NAT maps are built at start" },
	[LAN_NETS]    = { "lan.networks", K_CIDRS, FIELD(lan), offsetof(struct conf, n_lan), 0, NULL, 0, 0, NULL, RESTART,
			  "the phones' networks (required); calls and bindings in progress were admitted under them" },
	[SIP_PORTS]   = { "sip.ports", K_PORTS, FIELD(sip_ports), offsetof(struct conf, n_sip_ports), 5060, NULL, 1, 65535, NULL, REBUILD(RULES),
			  "UDP ports carrying SIP; reload replaces the diversion rules" },
	[SIP_PMIN]    = { "sip.port_min", K_UINT, FIELD(sig_port_min), 0, 40000, NULL, 1, 65535, NULL, RESTART,
			  "first public SIP port handed out; the port allocator is built at start" },
	[SIP_PMAX]    = { "sip.port_max", K_UINT, FIELD(sig_port_max), 0, 49999, NULL, 1, 65535, NULL, RESTART,
			  "last public SIP port handed out; the port allocator is built at start" },
	[SIP_INBOUND] = { "sip.inbound_from", K_ENUM, FIELD(inbound_src), 0, CONF_INBOUND_REGISTRAR, NULL, 0, 0, ch_inbound, LIVE,
			  "who may send requests to a registered phone (new registrations and calls)" },
	[SIP_TCP]     = { "sip.tcp", K_BOOL, FIELD(sip_tcp), 0, 1, NULL, 0, 0, NULL, RESTART,
			  "relay SIP over TCP (TPROXY); the relay's listener and rules are made at start" },
	[SIP_TCP_PORT] = { "sip.tcp_relay_port", K_UINT, FIELD(tcp_relay_port), 0, 0, NULL, 0, 65535, NULL, RESTART,
			  "the relay's TPROXY listener port, 0 = any free one; bound at start" },
	[SIP_IPV6]    = { "sip.ipv6", K_BOOL, FIELD(sip_ipv6), 0, 1, NULL, 0, 0, NULL, REBUILD(RULES),
			  "divert SIP over IPv6 too (ip6tables/ip6 table); reload replaces the diversion rules" },
	[Q_NUM]       = { "queue.number", K_UINT, FIELD(queue_num), 0, 0, NULL, 0, 65535, NULL, RESTART,
			  "the NFQUEUE number; the queue socket is bound to it at start" },
	[Q_MAXLEN]    = { "queue.max_length", K_UINT, FIELD(queue_maxlen), 0, 4096, NULL, 1, 1048576, NULL, RESTART,
			  "kernel queue length; set on the queue at start" },
	[Q_HOLDOFF]   = { "queue.holdoff_us", K_UINT, FIELD(holdoff_us), 0, 2000, NULL, 0, 1000000, NULL, LIVE,
			  "longest adaptive pause after a partial burst" },
	[Q_BATCH]     = { "queue.batch", K_UINT, FIELD(batch_max), 0, 64, NULL, 1, 256, NULL, LIVE,
			  "verdicts per netlink message" },
	[Q_DIVERT]    = { "queue.divert", K_ENUM, FIELD(divert), 0, CONF_DIVERT_IPTABLES, NULL, 0, 0, ch_divert, REBUILD(RULES),
			  "iptables or nft diversion; reload replaces the diversion rules" },
	[Q_RTPRIO]    = { "queue.realtime_priority", K_UINT, FIELD(realtime_priority), 0, 1, NULL, 0, 99, NULL, RESTART,
			  "SCHED_FIFO priority; CAP_SYS_NICE is dropped after start" },
	[Q_FASTPATH]  = { "queue.fastpath", K_ENUM, FIELD(fastpath), 0, CONF_FASTPATH_OFF, NULL, 0, 0, ch_fastpath, RESTART,
			  "the tc eBPF fast path: auto, on or off; loaded and attached at start" },
	[Q_FPMARK]    = { "queue.fastpath_mark_bit", K_UINT, FIELD(fastpath_mark_bit), 0, 28, NULL, 0, 31, NULL, RESTART,
			  "the packet mark bit of fast-path messages; in the diversion made at start" },
	[Q_GUARD]     = { "queue.guard", K_ENUM, FIELD(guard), 0, CONF_GUARD_AUTO, NULL, 0, 0, ch_guard, RESTART,
			  "the WAN egress guard (tc eBPF): auto, on or off; loaded and attached at start" },
	[Q_GDMARK]    = { "queue.guard_mark_bit", K_UINT, FIELD(guard_mark_bit), 0, 29, NULL, 0, 31, NULL, RESTART,
			  "the packet mark bit the diversion sets on what it queues; in the diversion made at start" },
	[M_PMIN]      = { "media.port_min", K_UINT, FIELD(media_port_min), 0, 20000, NULL, 1024, 65535, NULL, RESTART,
			  "first public media port; the port allocator is built at start" },
	[M_PMAX]      = { "media.port_max", K_UINT, FIELD(media_port_max), 0, 39999, NULL, 1, 65535, NULL, RESTART,
			  "last public media port; the port allocator is built at start" },
	[M_PINSRC]    = { "media.pinhole_source", K_ENUM, FIELD(pinhole_src), 0, CONF_PINHOLE_PEER, NULL, 0, 0, ch_pinsrc, LIVE,
			  "who may send into a pinhole (pinholes opened from now on)" },
	[M_OTHER]     = { "media.allow_other_lan_hosts", K_BOOL, FIELD(media_other_hosts), 0, 0, NULL, 0, 0, NULL, LIVE,
			  "whether an SDP may name another LAN host" },
	[T_DIALOG]    = { "timers.dialog", K_UINT, FIELD(dialog_timeout_s), 0, 7200, NULL, 1, 604800, NULL, LIVE,
			  "seconds without SIP before a confirmed call ends (from its next message)" },
	[T_EARLY]     = { "timers.early_dialog", K_UINT, FIELD(early_timeout_s), 0, 180, NULL, 1, 86400, NULL, LIVE,
			  "seconds a call may ring" },
	[T_BIND]      = { "timers.binding_idle", K_UINT, FIELD(binding_idle_s), 0, 300, NULL, 1, 86400, NULL, LIVE,
			  "lifetime of an unused signalling binding (from its next use)" },
	[T_REG]       = { "timers.register_max", K_UINT, FIELD(register_max_s), 0, 7200, NULL, 1, 604800, NULL, LIVE,
			  "cap on a registration's lifetime (from its next REGISTER)" },
	[L_BIND]      = { "limits.bindings", K_UINT, FIELD(max_bindings), 0, 16384, NULL, 1, 1048576, NULL, RESTART,
			  "binding table size, allocated at start" },
	[L_DLG]       = { "limits.dialogs", K_UINT, FIELD(max_dialogs), 0, 8192, NULL, 1, 1048576, NULL, RESTART,
			  "dialog table size, allocated at start" },
	[L_PIN]       = { "limits.pinholes", K_UINT, FIELD(max_pinholes), 0, 16384, NULL, 1, 1048576, NULL, RESTART,
			  "pinhole limit; the kernel element table is sized from it at start" },
	[L_PINPP]     = { "limits.pinholes_per_phone", K_UINT, FIELD(max_pinholes_per_phone), 0, 64, NULL, 1, 65536, NULL, LIVE,
			  "pinholes one phone may hold (checked at each new pinhole)" },
	[L_STREAMS]   = { "limits.streams_per_call", K_UINT, FIELD(max_streams_per_call), 0, 8, NULL, 1, 64, NULL, LIVE,
			  "media streams per call (checked at each offer)" },
	[L_TCP]       = { "limits.tcp_connections", K_UINT, FIELD(max_tcp_conns), 0, 1024, NULL, 1, 65536, NULL, RESTART,
			  "relayed SIP/TCP connections (sip.tcp); the pool is allocated at start" },
	[L_TCPPP]     = { "limits.tcp_connections_per_phone", K_UINT, FIELD(max_tcp_per_phone), 0, 16, NULL, 1, 65536, NULL, LIVE,
			  "relayed SIP/TCP connections from one phone (new connections from now on)" },
	[L_RATE]      = { "limits.messages_per_second_per_source", K_UINT, FIELD(rate_per_source), 0, 500, NULL, 0, 1048576, NULL, LIVE,
			  "SIP messages per second from one source, 0 = no limit" },
	[P_NFT]       = { "paths.nft_table", K_TABLE, FIELD(nft_table), 0, 0, "sipalgd", 0, 0, NULL, RESTART,
			  "our nftables table; created at start, removed at exit" },
	[P_CTL]       = { "paths.control_socket", K_PATH, FIELD(ctl_socket), 0, 0, "/run/sipalgd.sock", 0, 0, NULL, RESTART,
			  "control socket; bound at start" },
	[P_PID]       = { "paths.pid_file", K_PATH, FIELD(pid_file), 0, 0, "/run/sipalgd.pid", 0, 0, NULL, RESTART,
			  "pid file; written at start, removed at exit" },
	[P_STATE]     = { "paths.state_file", K_PATH, FIELD(state_file), 0, 0, NULL, 0, 0, NULL, RESTART,
			  "calls kept across restarts; read at start (default: beside the control socket)" },
	[LOG_LEVEL]   = { "log.level", K_ENUM, FIELD(log_level), 0, LOG_LVL_INFO, NULL, 0, 0, ch_level, LIVE,
			  "error, warning, info or debug" },
	[LOG_SYSLOG]  = { "log.syslog", K_BOOL, FIELD(log_syslog), 0, 0, NULL, 0, 0, NULL, REBUILD(LOG),
			  "syslog or standard error; reload switches the log" },
	/* The one top-level key (no section): parse_document finds it here. */
	[MODE]        = { "mode", K_ENUM, FIELD(observe), 0, 0, NULL, 0, 0, ch_mode, LIVE,
			  "enforce, or observe: track and show, change no byte, open nothing" },
};

_Static_assert(KEY__COUNT <= CONF_KEYS_MAX, "raise CONF_KEYS_MAX in conf.h");

#undef FIELD
#undef LIVE
#undef RESTART
#undef REBUILD

static void *field(struct conf *c, enum key k)
{
	return (char *)c + keys[k].off;
}

static const void *cfield(const struct conf *c, enum key k)
{
	return (const char *)c + keys[k].off;
}

static int *count_of(struct conf *c, enum key k)
{
	return (int *)(void *)((char *)c + keys[k].n_off);
}

static int ccount_of(const struct conf *c, enum key k)
{
	return *(const int *)(const void *)((const char *)c + keys[k].n_off);
}

/* K_UINT fields are uint16_t or uint32_t; the row's size says which. */
static void put_uint(struct conf *c, enum key k, uint32_t v)
{
	if (keys[k].size == sizeof(uint16_t))
		*(uint16_t *)field(c, k) = (uint16_t)v;
	else
		*(uint32_t *)field(c, k) = v;
}

static uint32_t get_uint(const struct conf *c, enum key k)
{
	if (keys[k].size == sizeof(uint16_t))
		return *(const uint16_t *)cfield(c, k);
	return *(const uint32_t *)cfield(c, k);
}

/* The section of a key: its name up to the dot. */
static enum sect sect_of(enum key k)
{
	size_t n = strcspn(keys[k].name, ".");
	enum sect s;

	for (s = 0; s < S__COUNT; s++)
		if (strlen(sect_names[s]) == n && !strncmp(sect_names[s], keys[k].name, n))
			break;
	return s;
}

struct parser {
	yaml_parser_t yp;
	yaml_event_t ev;
	int have_ev;
	const char *name;
	const unsigned char *buf;
	size_t len;
	char *err;
	size_t errlen;
	struct conf *c;
	int sect_line[S__COUNT]; /* 0 = not in the file */
	int key_line[KEY__COUNT];
};

/* Without paths.state_file the state lives beside the control socket
 * (/run/sipalgd.sock -> /run/sipalgd.state): two daemons on one machine,
 * which must have two sockets, never share a state file. */
static void state_from_socket(struct conf *c)
{
	size_t n = strlen(c->ctl_socket);

	if (n > 5 && strcmp(c->ctl_socket + n - 5, ".sock") == 0)
		n -= 5;
	snprintf(c->state_file, sizeof(c->state_file), "%.*s.state", (int)n, c->ctl_socket);
}

void conf_defaults(struct conf *c)
{
	memset(c, 0, sizeof(*c));
	for (enum key k = 0; k < KEY__COUNT; k++) {
		const struct keydef *d = &keys[k];

		switch (d->kind) {
		case K_UINT:
			put_uint(c, k, d->def);
			break;
		case K_BOOL:
		case K_ENUM:
			*(int *)field(c, k) = (int)d->def;
			break;
		case K_PORTS:
			*(uint16_t *)field(c, k) = (uint16_t)d->def;
			*count_of(c, k) = 1;
			break;
		case K_IFNAME:
		case K_TABLE:
		case K_PATH:
			if (d->def_s)
				snprintf(field(c, k), d->size, "%s", d->def_s);
			break;
		case K_ADDR:
		case K_CIDRS:
		case K_PREFIX6:
			break; /* zero: automatic / required / none */
		}
	}
	state_from_socket(c);
}

/* ---- error reporting ------------------------------------------------- */

/* Quote an untrusted value for an error message: printable ASCII as is,
 * everything else as \xNN (so a hostile config cannot put escape sequences
 * on the operator's terminal), cut at 48 characters. */
static const char *quote(char *dst, size_t dstlen, const char *s, size_t n)
{
	size_t o = 0, i;

	if (dstlen < 16)
		return "\"?\"";
	dst[o++] = '"';
	for (i = 0; i < n && o + 8 < dstlen && i < 48; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '"' || ch == '\\') {
			dst[o++] = '\\';
			dst[o++] = (char)ch;
		} else if (ch >= 0x20 && ch < 0x7f) {
			dst[o++] = (char)ch;
		} else {
			o += (size_t)snprintf(dst + o, dstlen - o, "\\x%02x", ch);
		}
	}
	if (i < n) {
		memcpy(dst + o, "...", 3);
		o += 3;
	}
	dst[o++] = '"';
	dst[o] = '\0';
	return dst;
}

__attribute__((format(printf, 3, 4)))
static int fail(struct parser *p, int line, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!p->err || !p->errlen)
		return -1;
	n = snprintf(p->err, p->errlen, "%s:%d: ", p->name, line);
	if (n < 0 || (size_t)n >= p->errlen)
		return -1;
	va_start(ap, fmt);
	vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

static int ev_line(const struct parser *p)
{
	return (int)p->ev.start_mark.line + 1;
}

static const char *ev_sval(const struct parser *p)
{
	return (const char *)p->ev.data.scalar.value;
}

static size_t ev_slen(const struct parser *p)
{
	return p->ev.data.scalar.length;
}

/* A plain scalar that YAML reads as null: "", "~", "null". */
static int ev_is_null(const struct parser *p)
{
	const char *v = ev_sval(p);

	if (p->ev.type != YAML_SCALAR_EVENT ||
	    p->ev.data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return 0;
	return ev_slen(p) == 0 || !strcmp(v, "~") || !strcmp(v, "null") ||
	       !strcmp(v, "Null") || !strcmp(v, "NULL");
}

/* "a mapping", "a list", "an empty value" or the quoted scalar. */
static const char *ev_describe(const struct parser *p, char *buf, size_t len)
{
	switch (p->ev.type) {
	case YAML_MAPPING_START_EVENT:
		return "a mapping";
	case YAML_SEQUENCE_START_EVENT:
		return "a list";
	case YAML_SCALAR_EVENT:
		if (ev_is_null(p))
			return "an empty value";
		return quote(buf, len, ev_sval(p), ev_slen(p));
	default:
		return "nothing";
	}
}

/* Line and 1-based byte column of a byte offset, for reader errors (bad
 * UTF-8, control characters), which carry an offset but no mark. */
static int offset_line(const struct parser *p, size_t off, size_t *col)
{
	size_t bol = 0;
	int line = 1;

	if (off > p->len)
		off = p->len;
	for (size_t i = 0; i < off; i++)
		if (p->buf[i] == '\n') {
			line++;
			bol = i + 1;
		}
	*col = off - bol + 1;
	return line;
}

/* The byte at a libyaml mark. Marks count characters, not bytes, so walk
 * the line counting UTF-8 lead bytes. Returns -1 if out of the buffer. */
static int mark_byte(const struct parser *p, yaml_mark_t m)
{
	size_t i = 0, line = 0, col = 0;

	while (i < p->len && line < m.line)
		if (p->buf[i++] == '\n')
			line++;
	for (; i < p->len && p->buf[i] != '\n'; i++) {
		if ((p->buf[i] & 0xc0) == 0x80)
			continue;
		if (col++ == m.column)
			return p->buf[i];
	}
	return -1;
}

static int syntax_error(struct parser *p)
{
	const yaml_parser_t *y = &p->yp;
	const char *problem = y->problem ? y->problem : "unknown error";
	size_t col;
	int line;

	switch (y->error) {
	case YAML_MEMORY_ERROR:
		return fail(p, 1, "out of memory");
	case YAML_READER_ERROR:
		line = offset_line(p, y->problem_offset, &col);
		return fail(p, line, "YAML syntax error: %s (byte %zu of the line)",
			    problem, col);
	default:
		break;
	}
	line = (int)y->problem_mark.line + 1;
	/* libyaml calls a tab "a character that cannot start any token"; the
	 * operator needs to hear the word "tab". */
	if (mark_byte(p, y->problem_mark) == '\t')
		return fail(p, line, "YAML syntax error: tab character "
			    "(indent with spaces, not tabs)");
	/* "while scanning a quoted scalar" is only useful with where it began. */
	if (y->context && y->context_mark.line != y->problem_mark.line)
		return fail(p, line, "YAML syntax error: %s %s started at line %d",
			    problem, y->context, (int)y->context_mark.line + 1);
	if (y->context)
		return fail(p, line, "YAML syntax error: %s %s", problem, y->context);
	return fail(p, line, "YAML syntax error: %s", problem);
}

/* Fetch the next event, refusing the YAML features we do not support. */
static int next(struct parser *p)
{
	const yaml_char_t *tag = NULL;
	char q[128];

	if (p->have_ev) {
		yaml_event_delete(&p->ev);
		p->have_ev = 0;
	}
	if (!yaml_parser_parse(&p->yp, &p->ev))
		return syntax_error(p);
	p->have_ev = 1;
	switch (p->ev.type) {
	case YAML_ALIAS_EVENT:
		return fail(p, ev_line(p), "YAML aliases are not supported (*%s)",
			    (const char *)p->ev.data.alias.anchor);
	case YAML_SCALAR_EVENT:
		tag = p->ev.data.scalar.tag;
		break;
	case YAML_SEQUENCE_START_EVENT:
		tag = p->ev.data.sequence_start.tag;
		break;
	case YAML_MAPPING_START_EVENT:
		tag = p->ev.data.mapping_start.tag;
		break;
	default:
		break;
	}
	/* A tag would let "!!str 5060" or "!!binary" bypass our type checks. */
	if (tag)
		return fail(p, ev_line(p), "YAML tags are not supported (%s)",
			    quote(q, sizeof(q), (const char *)tag,
				  strlen((const char *)tag)));
	return 0;
}

/* ---- value parsers ----------------------------------------------------- */

static int want_scalar(struct parser *p, const char *key, const char *what)
{
	char q[128];

	if (p->ev.type == YAML_SCALAR_EVENT && !ev_is_null(p))
		return 0;
	return fail(p, ev_line(p), "%s: expected %s, got %s", key, what,
		    ev_describe(p, q, sizeof(q)));
}

/* Decimal only: YAML 1.1 would read "010" as octal and "0x10" as hex, and
 * an operator who writes either almost certainly meant something else. */
static int parse_uint(struct parser *p, const char *key, uint32_t min,
		      uint32_t max, uint32_t *out)
{
	const char *v = ev_sval(p);
	size_t n = ev_slen(p), i = 0;
	uint64_t val = 0;
	int neg = 0;
	char q[128];

	if (want_scalar(p, key, "an integer") < 0)
		return -1;
	if (p->ev.data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return fail(p, ev_line(p), "%s: expected an integer, got the quoted string %s",
			    key, quote(q, sizeof(q), v, n));
	if (v[0] == '-' || v[0] == '+') {
		neg = v[0] == '-';
		i = 1;
	}
	if (i >= n || (v[i] == '0' && n - i > 1))
		goto bad;
	for (; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			goto bad;
		if (val <= UINT32_MAX)
			val = val * 10 + (uint64_t)(v[i] - '0');
	}
	/* Only digits and a sign get here, so the value prints unquoted. */
	if (neg || val < min || val > max)
		return fail(p, ev_line(p), "%s: %.*s%s is out of range (%u..%u)", key,
			    (int)(n > 24 ? 24 : n), v, n > 24 ? "..." : "", min, max);
	*out = (uint32_t)val;
	return 0;
bad:
	return fail(p, ev_line(p), "%s: expected an integer, got %s", key,
		    quote(q, sizeof(q), v, n));
}

static int parse_bool(struct parser *p, const char *key, int *out)
{
	const char *v = ev_sval(p);
	char q[128];

	if (want_scalar(p, key, "true or false") < 0)
		return -1;
	if (p->ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
		if (!strcmp(v, "true") || !strcmp(v, "True") || !strcmp(v, "TRUE")) {
			*out = 1;
			return 0;
		}
		if (!strcmp(v, "false") || !strcmp(v, "False") || !strcmp(v, "FALSE")) {
			*out = 0;
			return 0;
		}
	}
	return fail(p, ev_line(p), "%s: expected true or false, got %s", key,
		    quote(q, sizeof(q), v, ev_slen(p)));
}

static int parse_enum(struct parser *p, const char *key,
		      const char *const *choices, int *out)
{
	const char *v = ev_sval(p);
	char q[128], list[96] = "";

	if (want_scalar(p, key, "a word") < 0)
		return -1;
	for (int i = 0; choices[i]; i++) {
		if (strlen(v) == ev_slen(p) && !strcmp(v, choices[i])) {
			*out = i;
			return 0;
		}
		if (i)
			strncat(list, choices[i + 1] ? ", " : " or ", sizeof(list) - strlen(list) - 1);
		strncat(list, choices[i], sizeof(list) - strlen(list) - 1);
	}
	return fail(p, ev_line(p), "%s: %s is not one of %s", key,
		    quote(q, sizeof(q), v, ev_slen(p)), list);
}

/* A string with no NUL inside (libyaml allows "\0" in double quotes). */
static int plain_string(struct parser *p, const char *key)
{
	char q[128];

	if (memchr(ev_sval(p), '\0', ev_slen(p)))
		return fail(p, ev_line(p), "%s: %s contains a NUL byte", key,
			    quote(q, sizeof(q), ev_sval(p), ev_slen(p)));
	return 0;
}

/* Linux's dev_valid_name(): 1..15 bytes, not "." or "..", no '/', ':' or
 * whitespace. */
int conf_name_ok(const char *s, size_t max, int ifname)
{
	size_t n = strnlen(s, max);

	if (n == 0 || n >= max)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '_')
			continue;
		if (ifname && (ch == '-' || ch == '.' || ch == '@' || ch == ':'))
			continue;
		return 0;
	}
	return 1;
}

static int parse_ifname(struct parser *p, const char *key, char out[16])
{
	const char *v = ev_sval(p);
	size_t n = ev_slen(p);
	char q[128];

	if (want_scalar(p, key, "an interface name") < 0 || plain_string(p, key) < 0)
		return -1;
	quote(q, sizeof(q), v, n);
	if (n > 15)
		return fail(p, ev_line(p), "%s: %s is longer than 15 characters", key, q);
	if (!strcmp(v, ".") || !strcmp(v, "..") || strpbrk(v, "/: \t\r\n\f\v") ||
	    !conf_name_ok(v, 16, 1))
		return fail(p, ev_line(p), "%s: %s is not a valid interface name", key, q);
	memcpy(out, v, n + 1);
	return 0;
}

/* inet_pton() only: inet_aton() would accept "10.1" and "0x0a.1.1.1". */
static int ipv4_parse(const char *s, size_t n, uint32_t *out)
{
	char tmp[16];
	struct in_addr a;

	if (n == 0 || n >= sizeof(tmp))
		return -1;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	if (inet_pton(AF_INET, tmp, &a) != 1)
		return -1;
	*out = ntohl(a.s_addr);
	return 0;
}

static int parse_addr(struct parser *p, const char *key, uint32_t *out)
{
	const char *v = ev_sval(p);
	size_t n = ev_slen(p);
	uint32_t a;
	char q[128];

	if (p->ev.type != YAML_SCALAR_EVENT)
		return want_scalar(p, key, "an IPv4 address");
	/* Empty means "use the WAN interface's address", the default. */
	if (ev_is_null(p) || n == 0) {
		*out = 0;
		return 0;
	}
	quote(q, sizeof(q), v, n);
	if (ipv4_parse(v, n, &a) < 0)
		return fail(p, ev_line(p), "%s: %s is not an IPv4 address", key, q);
	if (a == 0 || a == 0xffffffffu || (a >> 24) == 127 || (a >> 28) == 0xe)
		return fail(p, ev_line(p), "%s: %s is not a usable unicast address", key, q);
	*out = a;
	return 0;
}

/* Clear the host bits of a network (family-relative prefix length). */
static void net_mask(struct conf_net *n)
{
	unsigned bits = (addr_is_v4(&n->net) ? 96u : 0u) + n->plen;

	for (unsigned i = 0; i < 16; i++) {
		if (bits >= 8) {
			bits -= 8;
			continue;
		}
		n->net.b[i] &= (uint8_t)(0xff << (8 - bits));
		bits = 0;
	}
}

struct conf_net conf_net_v4(uint32_t addr, unsigned plen)
{
	struct conf_net n = { addr_v4(addr), (uint8_t)(plen > 32 ? 32 : plen) };

	net_mask(&n);
	return n;
}

int conf_net_get_v4(const struct conf_net *n, uint32_t *addr, uint32_t *mask)
{
	if (!addr_is_v4(&n->net))
		return 0;
	*mask = n->plen ? 0xffffffffu << (32 - n->plen) : 0;
	*addr = addr_get_v4(&n->net) & *mask;
	return 1;
}

static int parse_cidr(struct parser *p, const char *key, struct conf_net *net)
{
	const char *v = ev_sval(p);
	size_t n = ev_slen(p);
	const char *slash;
	uint32_t prefix = 0, max;
	size_t alen, i;
	char q[128];

	if (want_scalar(p, key, "a CIDR such as 192.168.1.0/24 or 2001:db8:1::/64") < 0 ||
	    plain_string(p, key) < 0)
		return -1;
	quote(q, sizeof(q), v, n);
	slash = memchr(v, '/', n);
	if (!slash)
		return fail(p, ev_line(p), "%s: %s is not a CIDR (expected ADDRESS/PREFIX, e.g. 192.168.1.0/24)",
			    key, q);
	alen = (size_t)(slash - v);
	/* IPv4 dotted or IPv6 bare (no brackets in a CIDR). A v4-mapped
	 * ::ffff:a.b.c.d/n would be an IPv4 net with a 128-bit prefix:
	 * refused (write the IPv4 network). */
	uint32_t a4;
	if (!memchr(v, ':', alen)) {
		/* inet_pton's strict dotted quad, as wan.public_address */
		if (ipv4_parse(v, alen, &a4) < 0)
			return fail(p, ev_line(p), "%s: bad address in %s", key, q);
		net->net = addr_v4(a4);
	} else if (v[0] == '[' || !addr_parse((const uint8_t *)v, (uint32_t)alen, &net->net) ||
		   addr_is_v4(&net->net)) {
		return fail(p, ev_line(p), "%s: bad address in %s", key, q);
	}
	max = addr_is_v4(&net->net) ? 32 : 128;
	i = alen + 1;
	if (i == n || n - i > (max == 32 ? 2u : 3u))
		goto bad_prefix;
	for (; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			goto bad_prefix;
		prefix = prefix * 10 + (uint32_t)(v[i] - '0');
	}
	if (prefix > max)
		goto bad_prefix;
	/* Host bits are allowed ("192.168.1.1/24" is how `ip addr` prints
	 * the router's own address) and masked off. */
	net->plen = (uint8_t)prefix;
	net_mask(net);
	return 0;
bad_prefix:
	return fail(p, ev_line(p), "%s: bad prefix length in %s (must be 0..%u)", key, q,
		    addr_is_v4(&net->net) ? 32u : 128u);
}

/* wan.nat66_*: one IPv6 prefix, or empty (no NAT66: IPv6 is routed). A
 * /0 would translate every address, the WAN's too: refused. */
static int parse_prefix6(struct parser *p, const char *key, struct conf_net *net)
{
	char q[128];

	if (p->ev.type == YAML_SCALAR_EVENT && (ev_is_null(p) || ev_slen(p) == 0)) {
		memset(net, 0, sizeof(*net));
		return 0;
	}
	if (parse_cidr(p, key, net) < 0)
		return -1;
	quote(q, sizeof(q), ev_sval(p), ev_slen(p));
	if (addr_is_v4(&net->net))
		return fail(p, ev_line(p), "%s: %s is not an IPv6 prefix", key, q);
	if (net->plen == 0)
		return fail(p, ev_line(p), "%s: %s would translate every address (prefix length 1..128)", key, q);
	return 0;
}

static int parse_table(struct parser *p, const char *key, char out[32])
{
	const char *v = ev_sval(p);
	size_t n = ev_slen(p);
	char q[128];

	if (want_scalar(p, key, "a table name") < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		char ch = v[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '_'))
			n = 0;
	}
	if (n == 0 || n > 31)
		return fail(p, ev_line(p), "%s: %s must be 1..31 characters of A-Z a-z 0-9 _",
			    key, quote(q, sizeof(q), v, ev_slen(p)));
	memcpy(out, v, n + 1);
	return 0;
}

static int parse_path(struct parser *p, const char *key, char *out, size_t outlen)
{
	const char *v = ev_sval(p);
	size_t n = ev_slen(p);
	char q[128];

	if (want_scalar(p, key, "a path") < 0 || plain_string(p, key) < 0)
		return -1;
	quote(q, sizeof(q), v, n);
	/* The daemon may chdir("/"); a relative path would then move. */
	if (v[0] != '/')
		return fail(p, ev_line(p), "%s: %s is not an absolute path", key, q);
	if (n >= outlen)
		return fail(p, ev_line(p), "%s: %s is longer than %zu characters", key, q,
			    outlen - 1);
	memcpy(out, v, n + 1);
	return 0;
}

/* ---- lists --------------------------------------------------------------- */

static int want_list(struct parser *p, const char *key, const char *what)
{
	char q[128];

	if (p->ev.type == YAML_SEQUENCE_START_EVENT)
		return 0;
	return fail(p, ev_line(p), "%s: expected a list of %s, got %s", key, what,
		    ev_describe(p, q, sizeof(q)));
}

static int parse_cidrs(struct parser *p, enum key k, const char *key, int line)
{
	struct conf_net *lan = field(p->c, k), net;
	int *n_lan = count_of(p->c, k);
	int max = (int)(keys[k].size / sizeof(*lan));
	char q[128];

	if (want_list(p, key, "CIDRs") < 0)
		return -1;
	*n_lan = 0;
	for (;;) {
		if (next(p) < 0)
			return -1;
		if (p->ev.type == YAML_SEQUENCE_END_EVENT)
			break;
		if (parse_cidr(p, key, &net) < 0)
			return -1;
		for (int i = 0; i < *n_lan; i++)
			if (addr_eq(&lan[i].net, &net.net) && lan[i].plen == net.plen)
				return fail(p, ev_line(p), "%s: %s is listed twice", key,
					    quote(q, sizeof(q), ev_sval(p), ev_slen(p)));
		if (*n_lan == max)
			return fail(p, ev_line(p), "%s: more than %d networks", key, max);
		lan[(*n_lan)++] = net;
	}
	if (*n_lan == 0 && k == LAN_NETS)
		return fail(p, line, "%s is empty (at least one LAN network is required)", key);
	return 0;
}

static int parse_ports(struct parser *p, enum key k, const char *key, int line)
{
	uint16_t *ports = field(p->c, k);
	int *n_ports = count_of(p->c, k);
	int max = (int)(keys[k].size / sizeof(*ports));
	uint32_t port;

	if (want_list(p, key, "ports") < 0)
		return -1;
	*n_ports = 0;
	for (;;) {
		if (next(p) < 0)
			return -1;
		if (p->ev.type == YAML_SEQUENCE_END_EVENT)
			break;
		if (parse_uint(p, key, keys[k].min, keys[k].max, &port) < 0)
			return -1;
		for (int i = 0; i < *n_ports; i++)
			if (ports[i] == port)
				return fail(p, ev_line(p), "%s: %u is listed twice", key, port);
		if (*n_ports == max)
			return fail(p, ev_line(p), "%s: more than %d ports", key, max);
		ports[(*n_ports)++] = (uint16_t)port;
	}
	if (*n_ports == 0)
		return fail(p, line, "%s is empty (at least one SIP port is required)", key);
	return 0;
}

/* ---- the schema walk ------------------------------------------------------ */

/* The current event is the value of key `k`, whose key was on `line`. */
static int parse_value(struct parser *p, enum key k, int line)
{
	const struct keydef *d = &keys[k];
	const char *key = d->name;
	struct conf *c = p->c;
	uint32_t u;
	int i = 0;

	switch (d->kind) {
	case K_IFNAME:
		return parse_ifname(p, key, field(c, k));
	case K_ADDR:
		return parse_addr(p, key, field(c, k));
	case K_CIDRS:
		return parse_cidrs(p, k, key, line);
	case K_PREFIX6:
		return parse_prefix6(p, key, field(c, k));
	case K_PORTS:
		return parse_ports(p, k, key, line);
	case K_UINT:
		if (parse_uint(p, key, d->min, d->max, &u) < 0)
			return -1;
		put_uint(c, k, u);
		return 0;
	case K_BOOL:
		if (parse_bool(p, key, &i) < 0)
			return -1;
		*(int *)field(c, k) = i;
		return 0;
	case K_ENUM:
		if (parse_enum(p, key, d->choices, &i) < 0)
			return -1;
		*(int *)field(c, k) = i;
		return 0;
	case K_TABLE:
		return parse_table(p, key, field(c, k));
	case K_PATH:
		return parse_path(p, key, field(c, k), d->size);
	}
	return -1;
}

/* Key names must be plain strings; returns 0 with the name in the event. */
static int want_key(struct parser *p)
{
	char q[128];

	if (p->ev.type == YAML_SCALAR_EVENT && !ev_is_null(p) &&
	    strlen(ev_sval(p)) == ev_slen(p))
		return 0;
	return fail(p, ev_line(p), "expected a key name, got %s",
		    ev_describe(p, q, sizeof(q)));
}

static int parse_section(struct parser *p, enum sect s)
{
	char q[128], full[160];

	if (p->ev.type != YAML_MAPPING_START_EVENT)
		return fail(p, ev_line(p), "%s: expected a mapping of keys, got %s",
			    sect_names[s], ev_describe(p, q, sizeof(q)));
	for (;;) {
		enum key k;
		int line;

		if (next(p) < 0)
			return -1;
		if (p->ev.type == YAML_MAPPING_END_EVENT)
			return 0;
		if (want_key(p) < 0)
			return -1;
		line = ev_line(p);
		snprintf(full, sizeof(full), "%s.%s", sect_names[s], ev_sval(p));
		for (k = 0; k < KEY__COUNT; k++)
			if (!strcmp(keys[k].name, full))
				break;
		if (k == KEY__COUNT)
			return fail(p, line, "unknown key %s",
				    quote(q, sizeof(q), full, strlen(full)));
		if (p->key_line[k])
			return fail(p, line, "duplicate key \"%s\" (first at line %d)",
				    keys[k].name, p->key_line[k]);
		p->key_line[k] = line;
		if (next(p) < 0 || parse_value(p, k, line) < 0)
			return -1;
	}
}

static int parse_document(struct parser *p)
{
	char q[128];

	if (next(p) < 0)
		return -1;
	/* "---" alone, or "~": an empty document, same as an empty file. */
	if (ev_is_null(p))
		return next(p);
	if (p->ev.type != YAML_MAPPING_START_EVENT)
		return fail(p, ev_line(p), "expected a mapping of sections at the top level, got %s",
			    ev_describe(p, q, sizeof(q)));
	for (;;) {
		enum sect s;
		int line;

		if (next(p) < 0)
			return -1;
		if (p->ev.type == YAML_MAPPING_END_EVENT)
			return next(p); /* DOCUMENT-END */
		if (want_key(p) < 0)
			return -1;
		line = ev_line(p);
		/* Top-level keys (no section: "mode") are rows of the table too. */
		if (!strcmp(keys[MODE].name, ev_sval(p))) {
			if (p->key_line[MODE])
				return fail(p, line, "duplicate key \"%s\" (first at line %d)",
					    keys[MODE].name, p->key_line[MODE]);
			p->key_line[MODE] = line;
			if (next(p) < 0 || parse_value(p, MODE, line) < 0)
				return -1;
			continue;
		}
		for (s = 0; s < S__COUNT; s++)
			if (!strcmp(sect_names[s], ev_sval(p)))
				break;
		if (s == S__COUNT)
			return fail(p, line, "unknown key %s",
				    quote(q, sizeof(q), ev_sval(p), ev_slen(p)));
		if (p->sect_line[s])
			return fail(p, line, "duplicate key \"%s\" (first at line %d)",
				    sect_names[s], p->sect_line[s]);
		p->sect_line[s] = line;
		if (next(p) < 0 || parse_section(p, s) < 0)
			return -1;
	}
}

/* Pass 1: syntax only. Without it a wrongly indented line can fold into
 * the previous value ("eth1 bad: 1" is read as a scalar before libyaml sees
 * the ':'), and the operator would hear about a bad value instead of the
 * indentation. Nesting is capped here so that pass 2 never sees more than
 * a handful of levels and libyaml's stacks stay small. */
#define CONF_MAX_DEPTH 32

static int syntax_pass(struct parser *p)
{
	int depth = 0, rc = -1;

	if (!yaml_parser_initialize(&p->yp))
		return fail(p, 1, "out of memory");
	yaml_parser_set_input_string(&p->yp, p->buf, p->len);
	for (;;) {
		if (!yaml_parser_parse(&p->yp, &p->ev)) {
			syntax_error(p);
			break;
		}
		p->have_ev = 1;
		if (p->ev.type == YAML_STREAM_END_EVENT) {
			rc = 0;
			break;
		}
		if (p->ev.type == YAML_MAPPING_START_EVENT ||
		    p->ev.type == YAML_SEQUENCE_START_EVENT) {
			if (++depth > CONF_MAX_DEPTH) {
				fail(p, ev_line(p), "YAML nested more than %d levels deep",
				     CONF_MAX_DEPTH);
				break;
			}
		} else if (p->ev.type == YAML_MAPPING_END_EVENT ||
			   p->ev.type == YAML_SEQUENCE_END_EVENT) {
			depth--;
		}
		yaml_event_delete(&p->ev);
		p->have_ev = 0;
	}
	if (p->have_ev)
		yaml_event_delete(&p->ev);
	p->have_ev = 0;
	yaml_parser_delete(&p->yp);
	return rc;
}

/* Pass 2: the schema. */
static int parse_stream(struct parser *p)
{
	if (next(p) < 0) /* STREAM-START */
		return -1;
	if (next(p) < 0)
		return -1;
	if (p->ev.type == YAML_STREAM_END_EVENT)
		return 0; /* empty file, or only comments */
	if (parse_document(p) < 0)
		return -1;
	if (next(p) < 0)
		return -1;
	if (p->ev.type != YAML_STREAM_END_EVENT)
		return fail(p, ev_line(p), "only one YAML document is allowed");
	return 0;
}

/* Line for a cross-key error: the first of the keys that is in the file,
 * else its section, else line 1. */
static int line_of(const struct parser *p, enum key a, enum key b)
{
	if (p->key_line[a])
		return p->key_line[a];
	if (p->key_line[b])
		return p->key_line[b];
	if (sect_of(a) < S__COUNT && p->sect_line[sect_of(a)])
		return p->sect_line[sect_of(a)];
	return 1;
}

static int net_str(char *buf, size_t len, const struct conf_net *n)
{
	char a[ADDR_STRLEN];

	addr_fmt(a, &n->net, 0);
	return snprintf(buf, len, "%s/%u", a, n->plen);
}

/* Is IPv6 prefix n inside one of lan.networks' IPv6 prefixes? */
static int inside_lan_v6(const struct conf *c, const struct conf_net *n)
{
	for (int i = 0; i < c->n_lan; i++)
		if (!addr_is_v4(&c->lan[i].net) && c->lan[i].plen <= n->plen &&
		    addr_in_prefix(&n->net, &c->lan[i].net, c->lan[i].plen))
			return 1;
	return 0;
}

/* NAT66 (wan.nat66_lan_prefix -> wan.nat66_public_prefix): both or
 * neither, one length (the mapping keeps the host bits, RFC 6296 2.1),
 * apart from each other; the public prefix is outside lan.networks (its
 * addresses are the WAN peers' view of the phones) and, when lan.networks
 * names IPv6 prefixes, the LAN prefix is inside one (else its phones are
 * not seen as LAN and nothing of theirs is translated). */
static int check_nat66(struct parser *p)
{
	const struct conf *c = p->c;
	const struct conf_net *l = &c->nat66_lan, *u = &c->nat66_pub;
	char a[ADDR_STRLEN + 4], b[ADDR_STRLEN + 4];

	if (!l->plen && !u->plen)
		return 0;
	if (!l->plen || !u->plen)
		return fail(p, line_of(p, l->plen ? WAN_N66_LAN : WAN_N66_PUB, WAN_N66_LAN),
			    "%s is set but %s is not (NAT66 needs both)",
			    l->plen ? "wan.nat66_lan_prefix" : "wan.nat66_public_prefix",
			    l->plen ? "wan.nat66_public_prefix" : "wan.nat66_lan_prefix");
	net_str(a, sizeof(a), l);
	net_str(b, sizeof(b), u);
	if (l->plen != u->plen)
		return fail(p, line_of(p, WAN_N66_PUB, WAN_N66_LAN),
			    "wan.nat66_public_prefix %s and wan.nat66_lan_prefix %s differ in length "
			    "(the translation keeps the host bits)", b, a);
	if (addr_in_prefix(&u->net, &l->net, l->plen))
		return fail(p, line_of(p, WAN_N66_PUB, WAN_N66_LAN),
			    "wan.nat66_public_prefix %s is the same as wan.nat66_lan_prefix %s", b, a);
	for (int i = 0; i < c->n_lan; i++)
		if (addr_in_prefix(&u->net, &c->lan[i].net, c->lan[i].plen) ||
		    addr_in_prefix(&c->lan[i].net, &u->net, u->plen)) {
			net_str(a, sizeof(a), &c->lan[i]);
			return fail(p, line_of(p, WAN_N66_PUB, WAN_N66_PUB),
				    "wan.nat66_public_prefix %s overlaps lan.networks %s", b, a);
		}
	if (conf_has_lan_v6(c)) {
		if (!inside_lan_v6(c, l))
			return fail(p, line_of(p, WAN_N66_LAN, LAN_NETS),
				    "wan.nat66_lan_prefix %s is not inside lan.networks (its phones would not be "
				    "seen as LAN)", a);
	}
	return 0;
}

/* wan.masquerade6: IPv6 prefixes, each inside an IPv6 prefix of
 * lan.networks (else its phones are not seen as LAN and nothing of theirs
 * is translated) and apart from wan.nat66_lan_prefix (one address cannot
 * be both prefix-translated and masqueraded). */
static int check_masq6(struct parser *p)
{
	const struct conf *c = p->c;
	char a[ADDR_STRLEN + 4], b[ADDR_STRLEN + 4];

	for (int m = 0; m < c->n_masq6; m++) {
		const struct conf_net *n = &c->masq6[m];
		net_str(a, sizeof(a), n);
		if (addr_is_v4(&n->net))
			return fail(p, line_of(p, WAN_MASQ6, WAN_MASQ6),
				    "wan.masquerade6: %s is not an IPv6 prefix (IPv4 is always translated)", a);
		if (!inside_lan_v6(c, n))
			return fail(p, line_of(p, WAN_MASQ6, LAN_NETS),
				    "wan.masquerade6: %s is not inside an IPv6 prefix of lan.networks (its "
				    "phones would not be seen as LAN)", a);
		if (c->nat66_lan.plen && (addr_in_prefix(&n->net, &c->nat66_lan.net, c->nat66_lan.plen) ||
					  addr_in_prefix(&c->nat66_lan.net, &n->net, n->plen))) {
			net_str(b, sizeof(b), &c->nat66_lan);
			return fail(p, line_of(p, WAN_MASQ6, WAN_N66_LAN),
				    "wan.masquerade6: %s overlaps wan.nat66_lan_prefix %s (an address is either "
				    "prefix-translated or masqueraded)", a, b);
		}
	}
	return 0;
}

/* Checks that involve more than one key, once the whole file is read. */
static int check(struct parser *p)
{
	const struct conf *c = p->c;
	char buf[ADDR_STRLEN + 4];
	struct addr pub = addr_v4(c->public_ip);

	if (!c->wan_if[0])
		return fail(p, p->sect_line[S_WAN] ? p->sect_line[S_WAN] : 1,
			    "missing wan.interface (required)");
	if (c->n_lan == 0)
		return fail(p, p->sect_line[S_LAN] ? p->sect_line[S_LAN] : 1,
			    "missing lan.networks (required)");
	if (c->sig_port_min >= c->sig_port_max)
		return fail(p, line_of(p, SIP_PMAX, SIP_PMIN),
			    "sip.port_max %u must be greater than sip.port_min %u",
			    c->sig_port_max, c->sig_port_min);
	/* One bit cannot say both "rewritten by the fast path, skip the
	 * queue" and "went through the queue". */
	if (c->guard_mark_bit == c->fastpath_mark_bit)
		return fail(p, line_of(p, Q_GDMARK, Q_FPMARK),
			    "queue.guard_mark_bit %u must differ from queue.fastpath_mark_bit %u",
			    c->guard_mark_bit, c->fastpath_mark_bit);
	if (c->media_port_min % 2)
		return fail(p, line_of(p, M_PMIN, M_PMAX),
			    "media.port_min %u must be even (RTP takes the even port, RTCP the next)",
			    c->media_port_min);
	if (c->media_port_min >= c->media_port_max)
		return fail(p, line_of(p, M_PMAX, M_PMIN),
			    "media.port_max %u must be greater than media.port_min %u",
			    c->media_port_max, c->media_port_min);
	/* Both ranges are public ports we allocate on the WAN address: an
	 * overlap would hand one port to a binding and to a pinhole. */
	if (c->sig_port_min <= c->media_port_max && c->media_port_min <= c->sig_port_max) {
		int l = p->key_line[SIP_PMIN] || p->key_line[SIP_PMAX] ?
			line_of(p, SIP_PMIN, SIP_PMAX) : line_of(p, M_PMIN, M_PMAX);
		return fail(p, l, "sip.port_min..port_max %u-%u overlaps media.port_min..port_max %u-%u",
			    c->sig_port_min, c->sig_port_max, c->media_port_min, c->media_port_max);
	}
	for (int i = 0; i < c->n_sip_ports; i++)
		if (c->sip_ports[i] >= c->media_port_min && c->sip_ports[i] <= c->media_port_max)
			return fail(p, line_of(p, SIP_PORTS, M_PMIN),
				    "sip.ports: %u is inside the media port range %u-%u",
				    c->sip_ports[i], c->media_port_min, c->media_port_max);
	if (check_nat66(p) < 0 || check_masq6(p) < 0)
		return -1;
	/* A public address inside the LAN would make every WAN peer look like
	 * a phone to conf_is_lan(). */
	if (c->public_ip)
		for (int i = 0; i < c->n_lan; i++)
			if (addr_in_prefix(&pub, &c->lan[i].net, c->lan[i].plen)) {
				net_str(buf, sizeof(buf), &c->lan[i]);
				return fail(p, line_of(p, WAN_PUBLIC, WAN_PUBLIC),
					    "wan.public_address %u.%u.%u.%u is inside lan.networks %s",
					    c->public_ip >> 24, (c->public_ip >> 16) & 255,
					    (c->public_ip >> 8) & 255, c->public_ip & 255, buf);
			}
	return 0;
}

int conf_parse_buffer(const char *name, const char *buf, size_t len,
		      struct conf *c, char *err, size_t errlen)
{
	struct parser p;
	struct conf tmp;
	int rc;

	conf_defaults(c);
	if (err && errlen)
		err[0] = '\0';
	memset(&p, 0, sizeof(p));
	p.name = name ? name : "(config)";
	p.buf = (const unsigned char *)buf;
	p.len = buf ? len : 0;
	p.err = err;
	p.errlen = errlen;
	if (p.len > CONF_MAX_BYTES)
		return fail(&p, 1, "file is larger than %u bytes", CONF_MAX_BYTES);
	conf_defaults(&tmp);
	p.c = &tmp;
	if (!p.buf)
		p.buf = (const unsigned char *)"";
	if (syntax_pass(&p) < 0)
		return -1;
	if (!yaml_parser_initialize(&p.yp))
		return fail(&p, 1, "out of memory");
	yaml_parser_set_input_string(&p.yp, p.buf, p.len);
	rc = parse_stream(&p);
	if (rc == 0)
		rc = check(&p);
	if (rc == 0 && !p.key_line[P_STATE])
		state_from_socket(&tmp);
	if (p.have_ev)
		yaml_event_delete(&p.ev);
	yaml_parser_delete(&p.yp);
	if (rc == 0)
		*c = tmp;
	return rc;
}

int conf_load(const char *path, struct conf *c, char *err, size_t errlen)
{
	struct stat st;
	char *buf;
	size_t len = 0, cap;
	ssize_t r;
	int fd, rc;

	conf_defaults(c);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		goto io_err;
	if (fstat(fd, &st) < 0)
		goto io_err_close;
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		errno = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
		goto io_err;
	}
	/* Read up to one byte past the cap, so that conf_parse_buffer()
	 * reports a file that is too large instead of parsing a prefix. */
	cap = st.st_size < CONF_MAX_BYTES ? (size_t)st.st_size + 1 : CONF_MAX_BYTES + 1;
	buf = malloc(cap);
	if (!buf)
		goto io_err_close;
	while (len < cap) {
		r = read(fd, buf + len, cap - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			free(buf);
			goto io_err_close;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	rc = conf_parse_buffer(path, buf, len, c, err, errlen);
	free(buf);
	return rc;

io_err_close:
	{
		int e = errno;
		close(fd);
		errno = e;
	}
io_err:
	/* No line to point at: "FILE: reason", as cc and ntpd say it. */
	if (err && errlen)
		snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
	return -1;
}

int conf_is_lan(const struct conf *c, const struct addr *a)
{
	for (int i = 0; i < c->n_lan && i < CONF_MAX_LAN; i++)
		if (addr_in_prefix(a, &c->lan[i].net, c->lan[i].plen))
			return 1;
	return 0;
}

int conf_is_masq6(const struct conf *c, const struct addr *a)
{
	for (int i = 0; i < c->n_masq6 && i < CONF_MAX_LAN; i++)
		if (addr_in_prefix(a, &c->masq6[i].net, c->masq6[i].plen))
			return 1;
	return 0;
}

int conf_has_lan_v6(const struct conf *c)
{
	for (int i = 0; i < c->n_lan && i < CONF_MAX_LAN; i++)
		if (!addr_is_v4(&c->lan[i].net))
			return 1;
	return 0;
}

int conf_is_sip_port(const struct conf *c, uint16_t port)
{
	for (int i = 0; i < c->n_sip_ports && i < CONF_MAX_PORTS; i++)
		if (c->sip_ports[i] == port)
			return 1;
	return 0;
}

/* ---- the table, for reload and the documentation checks ------------------- */

int conf_key_count(void)
{
	return KEY__COUNT;
}

const char *conf_key_name(int k)
{
	return k >= 0 && k < KEY__COUNT ? keys[k].name : NULL;
}

const char *conf_key_doc(int k)
{
	return k >= 0 && k < KEY__COUNT ? keys[k].doc : NULL;
}

enum conf_reload conf_key_reload(int k)
{
	return k >= 0 && k < KEY__COUNT ? keys[k].reload : CONF_RESTART_ONLY;
}

enum conf_rebuild conf_key_rebuild(int k)
{
	return k >= 0 && k < KEY__COUNT ? keys[k].rebuild : CONF_REBUILD_NONE;
}

int conf_key_find(const char *name)
{
	for (int k = 0; k < KEY__COUNT; k++)
		if (!strcmp(keys[k].name, name))
			return k;
	return -1;
}

/* Lists compare by their used part, strings up to their NUL: what is
 * beyond may hold a default's leftovers. */
int conf_key_differs(const struct conf *a, const struct conf *b, int k)
{
	const struct keydef *d = &keys[k];
	size_t elem;

	switch (d->kind) {
	case K_IFNAME:
	case K_TABLE:
	case K_PATH:
		return strncmp(cfield(a, k), cfield(b, k), d->size) != 0;
	case K_CIDRS:
	case K_PORTS:
		elem = d->kind == K_CIDRS ? sizeof(struct conf_net) : sizeof(uint16_t);
		return ccount_of(a, k) != ccount_of(b, k) ||
		       memcmp(cfield(a, k), cfield(b, k), elem * (size_t)ccount_of(a, k)) != 0;
	default:
		return memcmp(cfield(a, k), cfield(b, k), d->size) != 0;
	}
}

void conf_key_copy(struct conf *dst, const struct conf *src, int k)
{
	memcpy(field(dst, k), cfield(src, k), keys[k].size);
	if (keys[k].kind == K_CIDRS || keys[k].kind == K_PORTS)
		*count_of(dst, k) = ccount_of(src, k);
}

static size_t addf(char *buf, size_t len, size_t off, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static size_t addf(char *buf, size_t len, size_t off, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (off >= len)
		return off;
	va_start(ap, fmt);
	n = vsnprintf(buf + off, len - off, fmt, ap);
	va_end(ap);
	return n < 0 ? off : off + (size_t)n;
}

/* As the value would be written in the file (flow style for lists). */
int conf_key_format(const struct conf *c, int k, char *buf, size_t len)
{
	const struct keydef *d = &keys[k];
	size_t o = 0;
	uint32_t a;

	if (!len)
		return -1;
	buf[0] = '\0';
	switch (d->kind) {
	case K_IFNAME:
	case K_TABLE:
	case K_PATH:
		o = addf(buf, len, o, *(const char *)cfield(c, k) ? "%.*s" : "\"\"%.*s",
			 (int)d->size, (const char *)cfield(c, k));
		break;
	case K_ADDR:
		a = *(const uint32_t *)cfield(c, k);
		if (a)
			o = addf(buf, len, o, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
		else
			o = addf(buf, len, o, "\"\"");
		break;
	case K_PREFIX6: {
		const struct conf_net *n = cfield(c, k);
		char net[ADDR_STRLEN + 4];
		if (n->plen) {
			net_str(net, sizeof(net), n);
			o = addf(buf, len, o, "%s", net);
		} else {
			o = addf(buf, len, o, "\"\"");
		}
		break;
	}
	case K_CIDRS:
		o = addf(buf, len, o, "[");
		for (int i = 0; i < ccount_of(c, k); i++) {
			char net[ADDR_STRLEN + 4];
			net_str(net, sizeof(net), (const struct conf_net *)cfield(c, k) + i);
			o = addf(buf, len, o, "%s%s", i ? ", " : "", net);
		}
		o = addf(buf, len, o, "]");
		break;
	case K_PORTS:
		o = addf(buf, len, o, "[");
		for (int i = 0; i < ccount_of(c, k); i++)
			o = addf(buf, len, o, "%s%u", i ? ", " : "", ((const uint16_t *)cfield(c, k))[i]);
		o = addf(buf, len, o, "]");
		break;
	case K_UINT:
		o = addf(buf, len, o, "%u", get_uint(c, k));
		break;
	case K_BOOL:
		o = addf(buf, len, o, "%s", *(const int *)cfield(c, k) ? "true" : "false");
		break;
	case K_ENUM: {
		int v = *(const int *)cfield(c, k), n = 0;
		while (d->choices[n])
			n++;
		o = addf(buf, len, o, "%s", v >= 0 && v < n ? d->choices[v] : "?");
		break;
	}
	}
	return o < len ? 0 : -1;
}
