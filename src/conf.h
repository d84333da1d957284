/* conf: the daemon's configuration, parsed from YAML (libyaml) into a fresh
 * struct that is swapped in only when the whole file is valid.
 * All IPv4 addresses in this struct are in HOST byte order. */
#ifndef SIPALGD_CONF_H
#define SIPALGD_CONF_H
#include <stddef.h>
#include <stdint.h>

#include "addr.h"

#define CONF_MAX_LAN   16
#define CONF_MAX_PORTS 8

enum conf_pinhole_src {
	CONF_PINHOLE_PEER, /* media accepted only from the SDP peer's address (default) */
	CONF_PINHOLE_ANY,  /* from any WAN address */
};

enum conf_inbound_src {
	CONF_INBOUND_REGISTRAR, /* requests to a registered Contact only from the registrar (default) */
	CONF_INBOUND_ANY,       /* from any WAN host */
};

enum conf_divert {
	CONF_DIVERT_IPTABLES, /* iptables -j NFQUEUE (xt compat): works on every kernel */
	CONF_DIVERT_NFT,      /* nft `queue` statement (needs CONFIG_NFT_QUEUE, e.g. OpenWrt fw4) */
};

enum conf_fastpath {
	CONF_FASTPATH_AUTO, /* attach where BPF works, else the queue alone (one log line) */
	CONF_FASTPATH_ON,   /* attach or refuse to start */
	CONF_FASTPATH_OFF,  /* nothing attached: every SIP message through the queue */
};

enum conf_guard {
	CONF_GUARD_AUTO, /* attach where BPF works, else a warning and the status line */
	CONF_GUARD_ON,   /* attach or refuse to start */
	CONF_GUARD_OFF,  /* no guard: a firewall reload leaks until repaired */
};

/* A LAN network, IPv4 or IPv6 (lan.networks). plen counts bits of the
 * family's own address (0-32 for IPv4, 0-128 for IPv6); host bits are
 * already masked off. */
struct conf_net {
	struct addr net;
	uint8_t plen;
};

/* An IPv4 network from a host-order address and prefix length. */
struct conf_net conf_net_v4(uint32_t addr, unsigned plen);
/* The IPv4 view of a network for the v4-only kernel paths (bpf fast
 * path, nft ip maps): 1 and addr/mask in host order, 0 for an IPv6 net. */
int conf_net_get_v4(const struct conf_net *n, uint32_t *addr, uint32_t *mask);

struct conf {
	char wan_if[16];            /* wan.interface (required) */
	uint32_t public_ip;         /* wan.public_address; 0 = the WAN interface's IPv4 address */
	struct conf_net nat66_lan;  /* wan.nat66_lan_prefix: translated by the router's NAT66; plen 0 = none */
	struct conf_net nat66_pub;  /* wan.nat66_public_prefix: what nat66_lan becomes, host bits kept */
	struct conf_net masq6[CONF_MAX_LAN]; /* wan.masquerade6: IPv6 LAN prefixes masqueraded behind the WAN's IPv6 address */
	int n_masq6;
	struct conf_net lan[CONF_MAX_LAN]; /* lan.networks (required, 1..16 CIDRs) */
	int n_lan;
	uint16_t sip_ports[CONF_MAX_PORTS]; /* sip.ports, default [5060] */
	int n_sip_ports;
	uint16_t queue_num;         /* queue.number, default 0 */
	uint32_t queue_maxlen;      /* queue.max_length, default 4096 */
	uint32_t holdoff_us;        /* queue.holdoff_us, default 2000: longest adaptive pause (0 = never) */
	uint32_t batch_max;         /* queue.batch, default 64 (1..256) */
	enum conf_divert divert;    /* queue.divert: iptables (default) | nft */
	uint32_t realtime_priority; /* queue.realtime_priority, default 1: SCHED_FIFO priority, 0 = ordinary scheduling */
	enum conf_fastpath fastpath; /* queue.fastpath: auto (default) | on | off (docs/fastpath.md) */
	uint32_t fastpath_mark_bit; /* queue.fastpath_mark_bit, default 28: skb->mark bit of handled packets */
	enum conf_guard guard;      /* queue.guard: auto (default) | on | off (src/guard.h) */
	uint32_t guard_mark_bit;    /* queue.guard_mark_bit, default 29: skb->mark bit of queued packets */
	uint16_t media_port_min;    /* media.port_min, default 20000 (>= 1024, even) */
	uint16_t media_port_max;    /* media.port_max, default 39999 (> min) */
	uint16_t sig_port_min;      /* sip.port_min, default 40000: public SIP ports when the private one is taken */
	uint16_t sig_port_max;      /* sip.port_max, default 40999 */
	int observe;                       /* mode: observe (1) | enforce (0, default) */
	enum conf_pinhole_src pinhole_src; /* media.pinhole_source: peer (default) | any */
	int media_other_hosts;      /* media.allow_other_lan_hosts: SDP may name another LAN host, default false */
	enum conf_inbound_src inbound_src; /* sip.inbound_from: registrar (default) | any */
	int sip_tcp;                /* sip.tcp: relay SIP over TCP (tcprelay.h), default true */
	int sip_ipv6;               /* sip.ipv6: divert SIP over IPv6 too (rules.h), default true */
	uint16_t tcp_relay_port;    /* sip.tcp_relay_port: TPROXY listener port, default 0 = any free one */
	uint32_t dialog_timeout_s;  /* timers.dialog, default 7200: a confirmed dialog with no SIP for this long ends */
	uint32_t early_timeout_s;   /* timers.early_dialog, default 180 */
	uint32_t binding_idle_s;    /* timers.binding_idle, default 300: unused signalling binding lifetime */
	uint32_t register_max_s;    /* timers.register_max, default 7200: cap on a registration's lifetime */
	uint32_t max_bindings;      /* limits.bindings, default 16384 */
	uint32_t max_dialogs;       /* limits.dialogs, default 8192 */
	uint32_t max_pinholes;      /* limits.pinholes, default 16384 */
	uint32_t max_pinholes_per_phone; /* limits.pinholes_per_phone, default 64 */
	uint32_t max_streams_per_call;   /* limits.streams_per_call, default 8 */
	uint32_t max_tcp_conns;     /* limits.tcp_connections, default 1024 */
	uint32_t max_tcp_per_phone; /* limits.tcp_connections_per_phone, default 16 */
	uint32_t rate_per_source;   /* limits.messages_per_second_per_source, default 500 (0 = off) */
	char nft_table[32];         /* paths.nft_table, default "sipalgd" */
	char ctl_socket[108];       /* paths.control_socket, default "/run/sipalgd.sock" */
	char pid_file[256];         /* paths.pid_file, default "/run/sipalgd.pid" */
	char state_file[256];       /* paths.state_file: calls survive a restart; default: the control
				     * socket's path with .sock replaced by .state */
	uint32_t local_ips[16];     /* the router's own IPv4 addresses (filled at start, not from the file) */
	int n_local;
	int log_level;              /* log.level: error|warning|info|debug, default info (enum log_level) */
	int log_syslog;             /* log.syslog, default false */
};

/* Every key's default (sipalgd.yaml(5)); wan.interface and lan.networks empty. */
void conf_defaults(struct conf *c);

/* Parse `path` into *c (which is first reset to defaults). Returns 0, or -1 with
 * err = "FILE:LINE: reason" (reason quotes the offending value). */
int conf_load(const char *path, struct conf *c, char *err, size_t errlen);

/* Same, from memory; `name` is used in error messages. For tests and fuzzing. */
int conf_parse_buffer(const char *name, const char *buf, size_t len,
		      struct conf *c, char *err, size_t errlen);

/* Is `a` inside one of the LAN networks (of its family)? */
int conf_is_lan(const struct conf *c, const struct addr *a);
/* Does lan.networks name an IPv6 prefix? Without one, routed IPv6 takes
 * its LAN side from the interface the datagram crosses (alg_packet_dir). */
int conf_has_lan_v6(const struct conf *c);
/* Is NAT66 configured (wan.nat66_lan_prefix and wan.nat66_public_prefix)?
 * Without it IPv6 is routed: nothing of it is translated. */
static inline int conf_has_nat66(const struct conf *c) { return c->nat66_lan.plen != 0; }
/* Is `a` an IPv6 address the router masquerades (wan.masquerade6)? Such a
 * phone is translated like an IPv4 one: bindings, public ports, NAT maps. */
int conf_is_masq6(const struct conf *c, const struct addr *a);
/* The same for the v4-only NAT modules (binding, nftmap, fast path, TCP
 * relay), which still hold IPv4 as a host-order uint32_t (docs/ipv6.md). */
static inline int conf_is_lan_v4(const struct conf *c, uint32_t ip)
{
	struct addr a = addr_v4(ip);
	return conf_is_lan(c, &a);
}

/* May this name go into nft rule text and iptables arguments? Table names
 * are [A-Za-z0-9_]; interface names may also hold - . @ : (`ifname` set). */
int conf_name_ok(const char *s, size_t max, int ifname);

/* Is `port` one of the SIP ports? */
int conf_is_sip_port(const struct conf *c, uint16_t port);

/* ---- the key table --------------------------------------------------------
 * One row per key in conf.c drives defaults, parsing, reload and the
 * documentation checks. Keys are numbered 0..conf_key_count()-1. */

/* What SIGHUP does with a changed key. */
enum conf_reload {
	CONF_RELOAD_LIVE,    /* read where it is used: copying it in applies it */
	CONF_RELOAD_REBUILD, /* applied by rebuilding what depends on it (below) */
	CONF_RESTART_ONLY,   /* sizes, binds or names something made at start: kept */
};

/* For CONF_RELOAD_REBUILD: what must be rebuilt. */
enum conf_rebuild {
	CONF_REBUILD_NONE,
	CONF_REBUILD_RULES, /* the SIP diversion (rules.h): remove the old, install the new */
	CONF_REBUILD_LOG,   /* log_init() */
	CONF_REBUILD_WAN,   /* the public address and what names it (wan.h) */
};

/* At most this many keys (conf.c asserts it): callers may size arrays by it. */
#define CONF_KEYS_MAX 64

int conf_key_count(void);
const char *conf_key_name(int k);   /* "sip.ports"; NULL out of range */
const char *conf_key_doc(int k);    /* one line */
enum conf_reload conf_key_reload(int k);
enum conf_rebuild conf_key_rebuild(int k);
int conf_key_find(const char *name); /* -1 if unknown */
/* Do a and b hold different values for key k? */
int conf_key_differs(const struct conf *a, const struct conf *b, int k);
/* dst's key k = src's (lists with their count). */
void conf_key_copy(struct conf *dst, const struct conf *src, int k);
/* The value as it would be written in the file ("0", "[5060, 5070]", "\"\"").
 * 0, or -1 if cut to fit. */
int conf_key_format(const struct conf *c, int k, char *buf, size_t len);

#endif
