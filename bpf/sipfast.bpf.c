// SPDX-License-Identifier: GPL-2.0
/* sipfast: the tc fast path for SIP messages that change no state in the
 * daemon (issue 11). Runs at clsact ingress of the LAN and WAN interfaces,
 * before conntrack and NAT; the contract with the loader is bpf/sipfast.h.
 *
 * Handled (rewritten exactly as src/alg.c would, then marked so that the
 * diversion skips them), and only when the message has no body:
 *   WAN -> LAN: 1xx responses and ACK (top Via sent-by, received=, rport=,
 *               the Request-URI, Contacts naming the public address,
 *               the public address in Call-ID/From/To given back);
 *   LAN -> WAN: 1xx responses and ACK (top Via sent-by of the ACK, Contacts
 *               via their bindings, every other LAN literal in the start
 *               line and headers replaced by the public address).
 * Everything else passes untouched and unmarked, to the queue as before.
 *
 * The program does not try to be a SIP parser. It accepts a strict subset
 * (CRLF lines, printable ASCII, no quotes, no folds, no compact names, one
 * Via, no lists in Via/Contact, no IPv6 references) in which the daemon's
 * parser (src/sipmsg.c) is known to succeed and its rewrite is a pure
 * function of the bytes and the bindings; it re-implements exactly the
 * parts of sipmsg.c/alg.c the rewrite depends on, and passes on anything
 * outside that subset. tests/fastpath/ checks the agreement byte for byte.
 *
 * Shape: the payload is copied to a per-CPU scratch buffer; every long
 * scan is a bpf_loop over it (the verifier checks a callback once instead
 * of each iteration) that reads eight bytes at a time, up to 64 per call:
 * a call and its return cost more than the bytes (docs/fastpath.md, "What
 * a rewrite costs"); the new payload is built in the scratch, the skb is grown or
 * shrunk at the tail (not after the IP header: that breaks CHECKSUM_PARTIAL
 * packets, ../shared/notes/ebpf-fastpath.md), the payload stored whole and
 * the lengths and checksums fixed by difference. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "sipfast.h"

#define IN_SZ 2048           /* scratch: payload in */
#define IN_MASK (IN_SZ - 1)
#define PL_MAX 1472          /* larger payloads: passed (not in one Ethernet frame anyway) */
#define OUT_MAX 1800         /* rewritten payload larger than this: passed */
#define MAXL 64              /* lines of a message we handle (start line + headers) */
#define NA 8                 /* edits of fields (Request-URI, Via, Contacts) */
#define NB 32                /* edits of address literals */
#define REP_SZ 32            /* "255.255.255.255:65535" is 21 */
#define MAXC 4               /* Contact headers */

/* header kinds, per line */
enum { K_OTHER, K_VIA, K_CONTACT, K_CLEN, K_CALLID, K_FROM, K_TO, K_CSEQ };

struct edit {
	__u32 off;
	__u32 len;
	__u32 rlen;
	char rep[REP_SZ];
};

struct lines {
	__u32 p, cur;
};

/* sip_param_find for "received" and "rport" at once: the first of each. */
struct prm {
	__u32 p, e;
	__u32 rcv_s, rcv_e, rcv;   /* received= value */
	__u32 rp_s, rp_e, rp;      /* rport value */
};

struct lit {
	__u32 p, li;
	__u32 e;             /* end of the range scanned now */
	__u32 ri;            /* inbound: which of ids_line[] */
	__u32 inbound;
	__u32 phone;         /* inbound: the phone's address */
	__u32 old_any;       /* outbound: cfg has earlier public addresses */
};

struct app {
	__u32 ip, op, ib;
	__s32 best;
	__u32 boff;
};

/* ---- checksum of a scratch buffer, 4-byte words, zero padded ---- */
struct cs {
	__u32 off, n;   /* bytes left, a multiple of 4 */
	__s64 sum;
	__u32 which;    /* 0: in[] (subtracted), 1: out[] (added) */
};

struct hp {
	__u32 hs, he;       /* host */
	__u32 ps, pe;       /* port digits (ps == pe: none) */
	__u32 port;         /* 0 when absent */
	__u32 end;          /* end of hostport */
};

struct sk {
	__u32 p, e;
	__u32 mask;
	__u32 stop_on;   /* 1: stop at the first byte in mask; 0: stop at the first not in it */
	__u32 last_at;   /* skip_to_at: position after the last '@' passed (userinfo) */
	__u32 note_at;   /* skip_to_at: stop at '@' too, note it and go on */
	__u64 set;       /* stop_on: stop_chars(mask) */
};

/* Via and Contact values: one element (no ','), no '(' comment, and the
 * parameters all there (sipmsg.c params_ok: no ";;", ";," or trailing ';'). */
struct vchk {
	__u32 p, e;
	__u32 empty;
};

struct scr {
	__u8 in[2 * IN_SZ];
	__u8 out[2 * IN_SZ + 64];
	__u32 len;                 /* payload length */
	__u32 nl;                  /* lines, start line included */
	__u32 ls[MAXL + 1];        /* line starts; ls[nl]: the empty line */
	__u32 le[MAXL];            /* line ends (the CR) */
	__u32 vs[MAXL];            /* header value start */
	__u8 kind[MAXL];
	__u8 lq[MAXL];             /* the line has a '"' */
	__u32 bad;                 /* the message is outside what we handle */
	__u32 end;                 /* byte after the empty line */
	__u32 n_via, via_line, n_contact, contact_line[MAXC];
	__u32 n_callid, n_from, n_to, n_cseq, cseq_line, n_clen, clen_line;
	__u32 n_ids, ids_line[4];  /* Call-ID, From, To lines, in order */
	struct edit a[NA];         /* field edits, any order */
	__u32 na;
	struct edit b[NB];         /* literal edits, in order */
	__u32 nb;
	__u8 a_done[NA];
	/* loop state lives here, not on the stack: the verifier does not
	 * track map memory, so a bpf_loop callback converges at once */
	struct lines lc;
	struct prm pm;
	struct lit lt;
	struct app ap;
	struct cs cs;
	struct sk sk;              /* skip_in/skip_to's loop (never nested) */
	struct vchk vc;
	/* handed to field_edits() */
	__u32 g_inbound, g_saddr, g_sport, g_via_params;
	struct sipfast_binding g_sigb;
	struct hp g_via, g_ruri, g_cu;
	struct bpf_fib_lookup fib;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sipfast_cfg);
} sipfast_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SIPFAST_BINDINGS_DEFAULT);
	__type(key, struct sipfast_priv_key);
	__type(value, struct sipfast_binding);
} sipfast_priv SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SIPFAST_BINDINGS_DEFAULT);
	__type(key, struct sipfast_pub_key);
	__type(value, struct sipfast_binding);
} sipfast_pub SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SIPFAST_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} sipfast_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scr);
} sipfast_scr SEC(".maps");

char LICENSE[] SEC("license") = "GPL";

/* ---- character classes (src/sipmsg.c's is_token, is_ws, is_lws, stop sets) ---- */
#define C_DIG 0x001
#define C_TOK 0x002    /* RFC 3261 token */
#define C_WS 0x004     /* SP HT */
#define C_LWS 0x008    /* SP HT CR LF */
#define C_USTOP 0x010  /* ; ? > ,   (sip_uri_find's stops) */
#define C_VSTOP 0x020  /* ; (       (sip_via_parse's stops) */
#define C_PVSTOP 0x040 /* ; , >     (end of a parameter value, with LWS) */
#define C_COLON 0x080
#define C_SLASH 0x100
#define C_SEMI 0x200
#define C_SP 0x400
#define C_AT 0x800
#define C_QM 0x1000

static const __u16 cls[256] = {
	['0' ... '9'] = C_DIG | C_TOK,
	['a' ... 'z'] = C_TOK,
	['A' ... 'Z'] = C_TOK,
	['-'] = C_TOK, ['.'] = C_TOK, ['!'] = C_TOK, ['%'] = C_TOK, ['*'] = C_TOK,
	['_'] = C_TOK, ['+'] = C_TOK, ['`'] = C_TOK, ['\''] = C_TOK, ['~'] = C_TOK,
	[' '] = C_WS | C_LWS | C_SP, ['\t'] = C_WS | C_LWS,
	['\r'] = C_LWS, ['\n'] = C_LWS,
	[';'] = C_USTOP | C_VSTOP | C_PVSTOP | C_SEMI,
	['?'] = C_USTOP | C_QM,
	['>'] = C_USTOP | C_PVSTOP,
	[','] = C_USTOP | C_PVSTOP,
	['('] = C_VSTOP,
	[':'] = C_COLON, ['/'] = C_SLASH, ['@'] = C_AT,
};

static __always_inline struct scr *scr_get(void)
{
	__u32 z = 0;
	return bpf_map_lookup_elem(&sipfast_scr, &z);
}

static __always_inline void stat_inc(__u32 i)
{
	__u64 *v = bpf_map_lookup_elem(&sipfast_stats, &i);
	if (v)
		*v += 1;
}

static __always_inline __u8 at(struct scr *s, __u32 p) { return s->in[p & IN_MASK]; }
/* Eight bytes at a time (the message is ASCII once pass 1 accepted it).
 * These tests may say "maybe" for a word without the byte (then the scan
 * goes on byte by byte) but never "no" for a word with it. */
#define ONES 0x0101010101010101ULL
#define HIGH 0x8080808080808080ULL
static __always_inline __u64 word_at(struct scr *s, __u32 p)
{
	/* one 8-byte load, in asm: clang knows the address is not aligned
	 * and would build the word from eight byte loads (the verifier and
	 * the x86 JIT take an unaligned load of map memory as it is) */
	const __u8 *a = &s->in[p & IN_MASK];
	__u64 w;

	asm volatile("%0 = *(u64 *)(%1 + 0)" : "=r"(w) : "r"(a));
	return w;
}
/* how many clean bytes before the first flagged one (m != 0): the lowest
 * flag of these tests is always a true one */
static __always_inline __u32 w_first(__u64 m)
{
	__u64 low = m & -m;
	return (__u32)(((low >> 7) * 0x0001020304050607ULL) >> 56);
}
static __always_inline __u64 w_less(__u64 x, __u64 n) { return (x - ONES * n) & ~x & HIGH; }
static __always_inline __u64 w_has(__u64 x, __u64 c) { return w_less(x ^ (ONES * c), 1); }
/* a byte m < b < n (bytes < 0x80) */
static __always_inline __u64 w_between(__u64 x, __u64 m, __u64 n)
{
	return (ONES * (127 + n) - (x & ONES * 127)) & ~x & ((x & ONES * 127) + ONES * (127 - m)) & HIGH;
}

static __always_inline __u8 lc(__u8 c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }
static __always_inline int is_dig(__u8 c) { return c >= '0' && c <= '9'; }

/* ---- scanning primitives ---- */


/* The stop classes as word tests. Every skip_to mask is made of these (no
 * C_TOK, no C_DIG), all single bytes, so a word says at once how far a run
 * goes. The caller's mask becomes up to eight stop bytes packed in a u64
 * at compile time (a constant mask: stop_chars folds), and the global
 * functions test them without a branch per class (branches on a mask the
 * verifier does not know would multiply its paths). Unused slots are 0x01:
 * pass 1 let no control byte but CR LF through. */
static __always_inline __u64 stop_chars(__u32 mask)
{
	__u64 set = 0;
	__u32 n = 0;

#define STOP_ADD(cond, ch)                              \
	if (cond) {                                     \
		set |= (__u64)(ch) << (8 * n);          \
		n++;                                    \
	}
	STOP_ADD(mask & (C_WS | C_LWS | C_SP), ' ');
	STOP_ADD(mask & (C_WS | C_LWS), '\t');
	STOP_ADD(mask & C_LWS, '\r');
	STOP_ADD(mask & C_LWS, '\n');
	STOP_ADD(mask & (C_USTOP | C_VSTOP | C_PVSTOP | C_SEMI), ';');
	STOP_ADD(mask & (C_USTOP | C_QM), '?');
	STOP_ADD(mask & (C_USTOP | C_PVSTOP), '>');
	STOP_ADD(mask & (C_USTOP | C_PVSTOP), ',');
	STOP_ADD(mask & C_VSTOP, '(');
	STOP_ADD(mask & C_COLON, ':');
	STOP_ADD(mask & C_SLASH, '/');
	STOP_ADD(mask & C_AT, '@');
#undef STOP_ADD
	for (; n < 8; n++)
		set |= (__u64)1 << (8 * n);
	return set;
}

static __always_inline __u64 w_stops(__u64 w, __u64 set)
{
	__u64 m = 0;

	/* recompute the patterns per word: hoisted out of the unrolled
	 * loops they would be eight live u64s, spilled to a stack that is
	 * already near its 512 bytes */
	asm volatile("" : "+r"(set));

#pragma unroll
	for (int k = 0; k < 8; k++)
		m |= w_has(w, (set >> (8 * k)) & 0xff);
	return m;
}

static long sk_cb(__u32 i, void *ctx)
{
	struct scr *s = scr_get();

	if (!s)
		return 1;
	struct sk *c = &s->sk;
	if (c->p >= c->e)
		return 1;
	if (c->stop_on) {
		/* up to 64 bytes a call, then the byte that stopped it ('@':
		 * noted, and on) */
		__u32 p = c->p;
		__u64 set = c->set;
#pragma unroll
		for (int k = 0; k < 8; k++) {
			__u64 m = w_stops(word_at(s, p), set);
			if (m) {
				p += w_first(m);
				goto found;
			}
			p += 8;
		}
		c->p = p < c->e ? p : c->e;
		return 0;
found:
		if (p >= c->e) {
			c->p = c->e;
			return 1;
		}
		c->p = p;
		if (c->note_at && at(s, p) == '@') {
			c->last_at = p + 1;
			c->p = p + 1;
			return 0;
		}
		return 1;
	}
	__u8 ch = at(s, c->p);
	__u16 k = cls[ch];
	if (k & c->mask)
		c->p++;
	else
		return 1;
	return 0;
}

/* while the byte is in mask. Most runs are short: the first 16 bytes are
 * tested inline (a callback per byte costs a call and a return each). */
__noinline __u32 skip_in(__u32 p, __u32 e, __u32 mask)
{
	struct scr *s = scr_get();

	if (!s)
		return p;
#pragma unroll
	for (int k = 0; k < 16; k++) {
		if (p >= e || !(cls[at(s, p)] & mask))
			return p;
		p++;
	}
	struct sk *c = &s->sk;
	__builtin_memset(c, 0, sizeof(*c));
	c->p = p;
	c->e = e;
	c->mask = mask;
	bpf_loop(IN_SZ, sk_cb, NULL, 0);
	return c->p;
}

/* until the byte is in mask (stop classes only: see stop_chars). 64 bytes
 * tested here a word at a time, the rest by a callback per 64. */
__noinline __u32 skip_to_set(__u32 p, __u32 e, __u64 set)
{
	struct scr *s = scr_get();

	if (!s || p >= e)
		return p;
#pragma unroll
	for (int k = 0; k < 8; k++) {
		__u64 m = w_stops(word_at(s, p), set);
		if (m) {
			p += w_first(m);
			return p < e ? p : e;
		}
		p += 8;
		if (p >= e)
			return e;
	}
	struct sk *c = &s->sk;
	__builtin_memset(c, 0, sizeof(*c));
	c->p = p;
	c->e = e;
	c->stop_on = 1;
	c->set = set;
	bpf_loop(IN_SZ, sk_cb, NULL, 0);
	return c->p;
}
#define skip_to(p, e, mask) skip_to_set(p, e, stop_chars(mask))

/* skip_to, and the position after the last '@' met (0: none); mask
 * without C_AT */
__noinline __u32 skip_to_at_set(__u32 p, __u32 e, __u64 set, __u32 *last_at)
{
	struct scr *s = scr_get();

	if (!s || !last_at)
		return p;
	struct sk *c = &s->sk;
	__builtin_memset(c, 0, sizeof(*c));
	c->p = p;
	c->e = e;
	c->stop_on = 1;
	c->note_at = 1;
	c->set = set;
	if (p < e)
		bpf_loop(IN_SZ, sk_cb, NULL, 0);
	*last_at = c->last_at;
	return c->p;
}
#define skip_to_at(p, e, mask, last_at) skip_to_at_set(p, e, stop_chars((mask) | C_AT), last_at)

/* Inline forms for the runs that are nearly always short (a blank, a
 * port, a parameter name, the host of a Via): every call of a function,
 * a helper or a bpf_loop callback costs a return, and with this CPU's
 * return-thunk mitigation (SRSO safe RET) a return is ~15 ns, more than
 * scanning the bytes. Longer runs go on in the global functions. */
static __always_inline __u64 w_stops_c(__u64 w, __u64 set)
{
	__u64 m = 0;

#pragma unroll
	for (int k = 0; k < 8; k++)
		if (((set >> (8 * k)) & 0xff) != 1) /* a constant set: folded */
			m |= w_has(w, (set >> (8 * k)) & 0xff);
	return m;
}

static __always_inline __u32 skip_to_i(struct scr *s, __u32 p, __u32 e, __u32 mask)
{
	__u64 set = stop_chars(mask);

	if (p >= e)
		return p;
	__u64 m = w_stops_c(word_at(s, p), set);
	if (m) {
		p += w_first(m);
		return p < e ? p : e;
	}
	if (p + 8 >= e)
		return e;
	return skip_to_set(p + 8, e, set);
}

static __always_inline __u32 skip_in_i(struct scr *s, __u32 p, __u32 e, __u32 mask)
{
#pragma unroll
	for (int k = 0; k < 8; k++) {
		if (p >= e || !(cls[at(s, p)] & mask))
			return p;
		p++;
	}
	return skip_in(p, e, mask);
}

/* Decimal in [p, e): parse_uint of sipmsg.c (1..20 digits, each partial
 * value <= max). Returns 0 and *v, or -1. */
__noinline int parse_uint(__u32 p, __u32 e, __u64 max, __u64 *v)
{
	struct scr *s = scr_get();
	__u64 n = 0;

	if (!s || !v || e <= p || e - p > 20)
		return -1;
	/* at most 20 digits: a plain loop, no callback per digit */
#pragma unroll
	for (int k = 0; k < 20; k++) {
		if (p + k >= e)
			break;
		__u8 ch = at(s, p + k);
		if (!is_dig(ch))
			return -1;
		n = n * 10 + (ch - '0');
		if (n > max)
			return -1;
	}
	*v = n;
	return 0;
}

/* alg.c's parse_num: up to 10 digits, else the default */
static __always_inline __u64 parse_num(__u32 p, __u32 e, __u64 dflt)
{
	__u64 v;

	if (e <= p || e - p > 10)
		return dflt;
	if (parse_uint(p, e, 0xffffffffffULL, &v) < 0)
		return dflt;
	return v;
}

/* Dotted quad at p, as alg.c's next_ipv4 reads one (octets of 1-3 digits,
 * a 4th digit fails the octet). Returns 1, *ip and *q (the byte after). */
static __always_inline int quad_at(struct scr *s, __u32 p, __u32 e, __u32 *ip, __u32 *q)
{
	__u32 v = 0, x = p;

#pragma unroll
	for (int oct = 0; oct < 4; oct++) {
		__u32 d = 0, o = 0;
		for (int k = 0; k < 4; k++) {
			if (x >= e)
				break;
			__u8 ch = at(s, x);
			if (!is_dig(ch))
				break;
			o = o * 10 + (ch - '0');
			d++;
			x++;
		}
		if (d == 0 || d > 3 || o > 255)
			return 0;
		v = v << 8 | o;
		if (oct < 3) {
			if (x >= e || at(s, x) != '.')
				return 0;
			x++;
		}
	}
	if (x < e && is_dig(at(s, x)))
		return 0;
	*ip = v;
	*q = x;
	return 1;
}

/* quad_at as a global function: its ~600 ways through are checked once,
 * not again for every state of the literal scan that calls it */
__noinline int quad_g(__u32 p, __u32 e, __u32 *ip, __u32 *q)
{
	struct scr *s = scr_get();

	if (!s || !ip || !q)
		return 0;
	return quad_at(s, p, e, ip, q);
}

/* sip_ipv4_parse: the whole span is a dotted quad */
__noinline int ipv4_exact(__u32 p, __u32 e, __u32 *ip)
{
	struct scr *s = scr_get();
	__u32 q;

	if (!s || !ip || !quad_at(s, p, e, ip, &q))
		return 0;
	return q == e;
}

/* ---- text of replacements ---- */

static __always_inline __u32 put_dec(char *d, __u32 n, __u32 v)
{
	/* v < 100000 (a port or an octet) */
	char t[5];
	__u32 k = 0;

#pragma unroll
	for (int i = 0; i < 5; i++) {
		/* v / 10 as a multiply: exact for v < 2^17, and a BPF division
		 * is a real div (tens of cycles, twice per digit) */
		__u32 q = (__u32)(((__u64)v * 0xCCCD) >> 19);
		t[i] = '0' + (v - q * 10);
		v = q;
		k++;
		if (!v)
			break;
	}
#pragma unroll
	for (int i = 4; i >= 0; i--)
		if ((__u32)i < k && n < REP_SZ)
			d[n++] = t[i];
	return n;
}

static __always_inline __u32 put_ip(char *d, __u32 ip)
{
	__u32 n = 0;

	n = put_dec(d, n, ip >> 24);
	d[n++ & (REP_SZ - 1)] = '.';
	n = put_dec(d, n, (ip >> 16) & 255);
	d[n++ & (REP_SZ - 1)] = '.';
	n = put_dec(d, n, (ip >> 8) & 255);
	d[n++ & (REP_SZ - 1)] = '.';
	n = put_dec(d, n, ip & 255);
	return n;
}

/* alg.c put_private / put_public: host, and ":port" when the phone wrote
 * one or when 5060 would be wrong. pub: the public address text. */
#define HAD_PORT 0x10000
__noinline int add_field_edit(__u32 off, __u32 len, __u32 ip, __u32 portf, int pub)
{
	struct scr *s = scr_get();
	__u32 z = 0, port = portf & 0xffff, had_port = portf & HAD_PORT;
	struct sipfast_cfg *cfg = bpf_map_lookup_elem(&sipfast_cfg, &z);

	if (!s || !cfg || s->na >= NA)
		return -1;
	struct edit *e = &s->a[s->na & (NA - 1)];
	__u32 n;
	if (pub) {
		n = cfg->pub_len;
		if (n > 15)
			return -1;
		__builtin_memcpy(e->rep, cfg->pub_str, 16);
	} else {
		n = put_ip(e->rep, ip);
	}
	if (had_port || port != 5060) {
		if (n > 15)
			return -1;
		e->rep[n++ & (REP_SZ - 1)] = ':';
		n = put_dec(e->rep, n, port);
	}
	e->off = off;
	e->len = len;
	e->rlen = n;
	s->a_done[s->na & (NA - 1)] = 0;
	s->na++;
	return 0;
}

/* ---- pass 1: lines ---- */


static __always_inline int name_is(struct scr *s, __u32 p, __u32 n, const char *str, __u32 sl)
{
	if (n != sl)
		return 0;
#pragma unroll
	for (__u32 i = 0; i < 14; i++)
		if (i < sl && lc(at(s, p + i)) != str[i])
			return 0;
	return 1;
}

/* sipmsg.c quotes_balanced: '"' toggles, '\\' inside quotes escapes */
struct qb {
	__u32 p, e, inq;
};

static long qb_cb(__u32 i, void *ctx)
{
	struct qb *c = ctx;
	struct scr *s = scr_get();

	if (!s || c->p >= c->e)
		return 1;
	__u8 ch = at(s, c->p);
	if (c->inq && ch == '\\')
		c->p++;
	else if (ch == '"')
		c->inq = !c->inq;
	c->p++;
	return 0;
}

__noinline int quotes_ok(__u32 p, __u32 e)
{
	struct qb c = { .p = p, .e = e };

	bpf_loop(IN_SZ, qb_cb, &c, 0);
	return !c.inq;
}

/* skip_in for the short runs of a header line (name, blanks): the first
 * 16 bytes tested here, without a call per byte */
static __always_inline __u32 skip_in_short(struct scr *s, __u32 p, __u32 e, __u32 mask)
{
#pragma unroll
	for (int k = 0; k < 16; k++) {
		if (p >= e || !(cls[at(s, p)] & mask))
			return p;
		p++;
	}
	return skip_in(p, e, mask);
}

/* one header line: name, colon, value; what kind. Called by pass 1 as
 * each line ends (a loop of its own would cost a callback per line). */
static __always_inline long hdr_line(struct scr *s, __u64 li)
{
	asm volatile("" : "+r"(li));
	if (li >= MAXL || li >= s->nl)
		goto bad;
	__u32 p = s->ls[li], e = s->le[li];
	__u32 q = skip_in_short(s, p, e, C_TOK);
	__u32 n = q - p;
	if (n == 0)
		goto bad;
	q = skip_in_short(s, q, e, C_WS);
	if (q >= e || at(s, q) != ':')
		goto bad;
	q = skip_in_short(s, q + 1, e, C_WS);
	/* an empty value, or blanks at the end (sipmsg.c trims them; we do not) */
	if (q >= e || (cls[at(s, e - 1)] & C_WS))
		goto bad;
	s->vs[li] = q;
	__u8 k = K_OTHER;
	if (n == 1) {
		/* compact forms: v m l c i f t are headers the daemon reads */
		__u8 c = lc(at(s, p));
		if (c == 'v' || c == 'm' || c == 'l' || c == 'c' || c == 'i' || c == 'f' || c == 't')
			goto bad;
	} else if (name_is(s, p, n, "via", 3)) {
		k = K_VIA;
		s->via_line = li;
		s->n_via++;
	} else if (name_is(s, p, n, "contact", 7)) {
		k = K_CONTACT;
		if (s->n_contact >= MAXC)
			goto bad;
		s->contact_line[s->n_contact & (MAXC - 1)] = li;
		s->n_contact++;
	} else if (name_is(s, p, n, "content-length", 14)) {
		k = K_CLEN;
		s->clen_line = li;
		s->n_clen++;
	} else if (name_is(s, p, n, "call-id", 7)) {
		k = K_CALLID;
		s->n_callid++;
	} else if (name_is(s, p, n, "from", 4)) {
		k = K_FROM;
		s->n_from++;
	} else if (name_is(s, p, n, "to", 2)) {
		k = K_TO;
		s->n_to++;
	} else if (name_is(s, p, n, "cseq", 4)) {
		k = K_CSEQ;
		s->cseq_line = li;
		s->n_cseq++;
	}
	s->kind[li] = k;
	if (k == K_CALLID || k == K_FROM || k == K_TO) {
		if (s->n_ids >= 4)
			goto bad;
		s->ids_line[s->n_ids & 3] = li;
		s->n_ids++;
	}
	/* Quotes only in From and To, where nothing but literals is read
	 * (and the daemon's parser wants them paired). Elsewhere they would
	 * change how Via, Contact and URIs split: pass. */
	if (s->lq[li] && ((k != K_FROM && k != K_TO) || !quotes_ok(q, e)))
		goto bad;
	return 0;
bad:
	s->bad = 1;
	return 1;
}

/* Each call reads up to 64 clean bytes eight at a time, then deals with
 * the one byte that stopped it. A call costs a call and a return (with
 * this CPU's return-thunk mitigation, a mispredicted one), so the fewer
 * the better: a line of the message is about one call. The zero byte
 * written at in[len] stops every scan at the end of the payload. */
static __always_inline __u64 line_flags(__u64 w)
{
	return w_less(w, 0x20) | (w & HIGH) | w_has(w, 0x7f) | w_has(w, '"') | w_has(w, '[');
}

static long line_cb(__u32 i, void *ctx)
{
	struct scr *s = scr_get();
	if (!s)
		return 1;
	struct lines *c = &s->lc;
	__u32 p = c->p;

	/* a fold: a line that starts with a blank (a tab is a control) */
	if (p == c->cur && p < s->len && at(s, p) == ' ') {
		s->bad = 1;
		return 1;
	}
#pragma unroll
	for (int k = 0; k < 8; k++) {
		__u64 m = line_flags(word_at(s, p));
		if (m) {
			p += w_first(m);
			goto flagged;
		}
		p += 8;
	}
	c->p = p;
	return 0;
flagged:
	if (p >= s->len) {
		s->bad = 1; /* no empty line */
		return 1;
	}
	__u8 ch = at(s, p);
	if (ch == '\r') {
		if (p + 1 >= s->len || at(s, p + 1) != '\n') {
			s->bad = 1;
			return 1;
		}
		if (p == c->cur) { /* the empty line */
			s->end = p + 2;
			s->ls[s->nl < MAXL ? s->nl : MAXL] = p;
			return 1;
		}
		if (s->nl >= MAXL) {
			s->bad = 1;
			return 1;
		}
		__u64 li = s->nl & (MAXL - 1);
		s->ls[li] = c->cur;
		s->le[li] = p;
		s->nl++;
		c->cur = p + 2;
		c->p = p + 2;
		/* a header line: read its name now */
		if (li > 0 && hdr_line(s, li))
			return 1;
		return 0;
	}
	/* quotes: allowed in From and To only (display names), see hdr_cb */
	if (ch == '"') {
		if (s->nl < MAXL)
			s->lq[s->nl & (MAXL - 1)] = 1;
		c->p = p + 1;
		return 0;
	}
	/* bare LF, controls, 8-bit, '[' (IPv6 references) */
	s->bad = 1;
	return 1;
}


/* bytes equal to c, exactly (no false flag above a true one): the blank
 * test needs every byte's answer, not just the first */
static __always_inline __u64 w_eq(__u64 w, __u64 c)
{
	__u64 y = w ^ (ONES * c);
	return ~(((y & ~HIGH) + ~HIGH) | y) & HIGH;
}

static long vchk_cb(__u32 i, void *ctx)
{
	struct scr *s = scr_get();

	if (!s)
		return 1;
	struct vchk *c = &s->vc;
	__u32 p = c->p, e = c->e, empty = c->empty;
	/* Two parameters a call, up to eight words each: the bytes before
	 * the first ';' ',' '(' of each word, where only "is one of them not
	 * a blank" matters (SP: pass 1 refused HT and every other control).
	 * The last word is cut at the end of the value, so the tail is not
	 * read a byte per call. */
#pragma unroll
	for (int seg = 0; seg < 2; seg++) {
#pragma unroll
		for (int k = 0; k < 8; k++) {
			if (p >= e)
				goto end;
			__u64 w = word_at(s, p);
			__u32 left = e - p;
			__u64 lim = left >= 8 ? HIGH : HIGH & ((1ULL << (8 * left)) - 1);
			__u64 m = (w_has(w, ';') | w_has(w, ',') | w_has(w, '(')) & lim;
			if (m) {
				__u32 n = w_first(m);
				if (~w_eq(w, ' ') & HIGH & ((1ULL << (8 * n)) - 1))
					empty = 0;
				p += n;
				goto flagged;
			}
			if (~w_eq(w, ' ') & lim)
				empty = 0;
			p += left >= 8 ? 8 : left;
		}
		/* 64 bytes without a separator: on in the next call */
		c->p = p;
		c->empty = empty;
		return 0;
flagged:;
		__u8 ch = at(s, p);
		if (ch != ';' || empty) {
			s->bad = 1; /* ',' '(' or an empty parameter */
			return 1;
		}
		empty = 1;
		p++;
	}
	c->p = p;
	c->empty = empty;
	return 0;
end:
	if (empty)
		s->bad = 1;
	return 1;
}

__noinline int value_check(__u32 line)
{
	struct scr *s = scr_get();
	__u64 li = line;

	asm volatile("" : "+r"(li));
	if (!s || li >= MAXL)
		return -1;
	s->vc.p = s->vs[li];
	s->vc.e = s->le[li];
	s->vc.empty = 0;
	bpf_loop(IN_SZ, vchk_cb, NULL, 0);
	return 0;
}

/* ---- sipmsg.c's URI, Via and parameter readers on the subset ---- */


/* parse_hostport: host up to ':', blank or a stop byte; ":port" 1..65535;
 * then the end, LWS or a stop byte. */
__noinline int hostport(__u32 p, __u32 e, __u32 stops, struct hp *h)
{
	struct scr *s = scr_get();

	if (!s || !h)
		return -1;
	/* stops is C_USTOP or C_VSTOP: the two stop sets as constants */
	__u64 set = stops == C_USTOP ? stop_chars(C_COLON | C_WS | C_USTOP) : stop_chars(C_COLON | C_WS | C_VSTOP);
	if (stops != C_USTOP && stops != C_VSTOP)
		return -1;
	__u32 q = skip_to_set(p, e, set);
	if (q == p)
		return -1;
	h->hs = p;
	h->he = q;
	h->ps = h->pe = q;
	h->port = 0;
	if (q < e && at(s, q) == ':') {
		__u64 v;
		__u32 ps = q + 1;
		q = skip_in_i(s, ps, e, C_DIG);
		h->ps = ps;
		h->pe = q;
		if (parse_uint(ps, q, 65535, &v) < 0 || v == 0)
			return -1;
		h->port = (__u32)v;
	}
	if (q < e && !(cls[at(s, q)] & (C_LWS | stops)))
		return -1;
	h->end = q;
	return 0;
}

/* sip_uri_find without display names (the subset has no quotes): the
 * first "sip:"/"sips:" (any case), userinfo up to the last '@'. */
struct sch {
	__u32 p, e, found;
};

static long sch_cb(__u32 i, void *ctx)
{
	struct sch *c = ctx;
	struct scr *s = scr_get();
	__u32 p = c->p;

	if (!s || p + 4 > c->e)
		return 1;
	if (lc(at(s, p)) == 's' && lc(at(s, p + 1)) == 'i' && lc(at(s, p + 2)) == 'p') {
		if (at(s, p + 3) == ':') {
			c->p = p + 4;
			c->found = 1;
			return 1;
		}
		if (p + 5 <= c->e && lc(at(s, p + 3)) == 's' && at(s, p + 4) == ':') {
			c->p = p + 5;
			c->found = 1;
			return 1;
		}
	}
	c->p = p + 1;
	return 0;
}

__noinline int uri_find(__u32 p, __u32 e, struct hp *h)
{
	struct sch c = { .p = p, .e = e };
	__u32 last_at = 0;

	if (!h)
		return -1;
	bpf_loop(IN_SZ, sch_cb, &c, 0);
	if (!c.found)
		return -1;
	p = c.p;
	skip_to_at(p, e, C_USTOP | C_WS, &last_at);
	if (last_at)
		p = last_at;
	return hostport(p, e, C_USTOP, h);
}

/* sip_via_parse: "SIP/2.0/UDP" (two slashes), LWS, hostport, params from ';' */
__noinline int via_parse(__u32 p, __u32 e, struct hp *h, __u32 *params)
{
	struct scr *s = scr_get();

	if (!s || !h || !params)
		return -1;
	for (int k = 0; k < 2; k++) {
		p = skip_to_i(s, p, e, C_SLASH);
		if (p >= e)
			return -1;
		p++;
	}
	p = skip_in_i(s, p, e, C_LWS);
	p = skip_in_i(s, p, e, C_TOK);
	if (p >= e || !(cls[at(s, p)] & C_LWS))
		return -1;
	p = skip_in_i(s, p, e, C_LWS);
	if (hostport(p, e, C_VSTOP, h) < 0)
		return -1;
	p = skip_in_i(s, h->end, e, C_LWS);
	if (p < e && at(s, p) != ';' && at(s, p) != '(')
		return -1;
	*params = p;
	return 0;
}


static long prm_cb(__u32 i, void *ctx)
{
	struct scr *s = scr_get();
	if (!s)
		return 1;
	struct prm *c = &s->pm;

	if (!s)
		return 1;
	__u32 p = skip_to_i(s, c->p, c->e, C_SEMI), e = c->e;
	if (p >= e)
		return 1;
	p = skip_in_i(s, p + 1, e, C_LWS);
	__u32 ns = p;
	p = skip_in_i(s, p, e, C_TOK);
	__u32 n = p - ns;
	p = skip_in_i(s, p, e, C_LWS);
	__u32 vs = p, ve = p;
	if (p < e && at(s, p) == '=') {
		p = skip_in_i(s, p + 1, e, C_LWS);
		vs = p;
		p = skip_to_i(s, p, e, C_PVSTOP | C_LWS);
		ve = p;
	}
	if (!c->rcv && name_is(s, ns, n, "received", 8)) {
		c->rcv = 1;
		c->rcv_s = vs;
		c->rcv_e = ve;
	}
	if (!c->rp && name_is(s, ns, n, "rport", 5)) {
		c->rp = 1;
		c->rp_s = vs;
		c->rp_e = ve;
	}
	c->p = p;
	return 0;
}

/* ---- pass 3: address literals (alg.c next_ipv4 over the header section) ---- */


/* conf_is_lan; a global function, so that its 16 branches do not
 * multiply the paths the verifier walks in its callers */
__noinline int lan_has(__u32 ip)
{
	__u32 z = 0;
	struct sipfast_cfg *cfg = bpf_map_lookup_elem(&sipfast_cfg, &z);

	if (!cfg)
		return 0;
#pragma unroll
	for (int i = 0; i < SIPFAST_MAX_LAN; i++)
		if (i < cfg->n_lan && (ip & bpf_ntohl(cfg->lan_mask[i])) == bpf_ntohl(cfg->lan_net[i]))
			return 1;
	return 0;
}
#define is_lan(cfg, ip) lan_has(ip)

static __always_inline int is_old_pub(const struct sipfast_cfg *cfg, __u32 ip)
{
#pragma unroll
	for (int i = 0; i < SIPFAST_PUB_OLD; i++)
		if (cfg->pub_old[i] && bpf_ntohl(cfg->pub_old[i]) == ip)
			return 1;
	return 0;
}

/* the line holding p, from li on (lines are met in order) */
__noinline __u32 line_from(__u32 p, __u32 li)
{
	struct scr *s = scr_get();

	if (!s)
		return li;
	for (int k = 0; k < MAXL; k++) {
		__u64 nx = li + 1;
		asm volatile("" : "+r"(nx));
		if (nx > MAXL || nx > s->nl || p < s->ls[nx])
			break;
		li = nx;
	}
	return li;
}

/* Each call reads up to 64 bytes without a digit eight at a time, then
 * looks at the run of digits that stopped it: only a run of 1-3 digits
 * and a '.' (and two dots in eight bytes) can start a dotted quad, and
 * only such a run costs the call to quad_g; any other run is passed in
 * one word and the call goes on to the next run (two a call: more did not
 * pay, and each one multiplies the verifier's paths). */
static __always_inline __u64 w_digits(__u64 w)
{
	return w_between(w, '0' - 1, '9' + 1); /* exact on ASCII */
}

static long lit_cb(__u32 i, void *ctx)
{
	struct scr *s = scr_get();
	if (!s)
		return 1;
	struct lit *c = &s->lt;
	__u32 z = 0;
	__u32 p = c->p, e = c->e;
	if (p >= e)
		goto next_range;
	/* two runs of digits a call: the second only when the first cannot
	 * start a literal (a port, a tag, a CSeq) */
#pragma unroll
	for (int st = 0; st < 2; st++) {
		__u64 m = 0;
#pragma unroll
		for (int k = 0; k < 8; k++) {
			m = w_digits(word_at(s, p));
			if (m)
				break;
			p += 8;
		}
		if (!m) {
			c->p = p;
			return 0;
		}
		p += w_first(m);
		if (p >= e)
			goto next_range;
		__u8 c1 = at(s, p + 1), c2 = at(s, p + 2), c3 = at(s, p + 3);
		int maybe = c1 == '.' || (is_dig(c1) && (c2 == '.' || (is_dig(c2) && c3 == '.')));
		/* and a dotted quad has two dots in its first eight bytes
		 * ("1.2.3.4", "255.255.") where "SIP/2.0\r\n" has one */
		__u64 w = word_at(s, p);
		__u64 dots = w_eq(w, '.');
		if (maybe && (dots & (dots - 1)) && !(p > 0 && is_dig(at(s, p - 1))))
			goto cand;
		/* past the run (a literal starts only after a non-digit); a
		 * run longer than eight goes on in the next step */
		__u64 nd = ~w_digits(w) & HIGH;
		p += nd ? w_first(nd) : 8;
	}
	c->p = p;
	return 0;
cand:;
	__u32 ip = 0, q = 0;
	if (!quad_g(p, e, &ip, &q)) {
		/* no literal starts in the rest of this run of digits */
		p++;
#pragma unroll
		for (int k = 0; k < 8; k++) {
			if (p >= e || !is_dig(at(s, p)))
				break;
			p++;
		}
		c->p = p;
		return 0;
	}
	c->p = q;
	/* the literal's line: usually this one or one of the next two */
	__u32 li = c->li;
#pragma unroll
	for (int k = 0; k < 3; k++) {
		__u64 nx = li + 1;
		asm volatile("" : "+r"(nx));
		if (nx > MAXL || nx > s->nl || p < s->ls[nx])
			goto have_line;
		li = nx;
	}
	li = line_from(p, li);
have_line:
	c->li = li;
	struct sipfast_cfg *cfg = bpf_map_lookup_elem(&sipfast_cfg, &z);
	if (!cfg)
		return 1;
	__u8 k = c->li < MAXL ? s->kind[c->li & (MAXL - 1)] : K_OTHER;
	int ids = c->li > 0 && (k == K_CALLID || k == K_FROM || k == K_TO);
	struct edit *ed;
	if (c->inbound) {
		/* unscrub_pub: Call-ID, From, To only */
		if (!ids || !ip)
			return 0;
		if (ip != bpf_ntohl(cfg->pub_ip)) {
			if (is_old_pub(cfg, ip))
				goto bad; /* a dialog from before a WAN change: the daemon's */
			return 0;
		}
		if (s->nb >= NB)
			goto bad;
		ed = &s->b[s->nb & (NB - 1)];
		ed->rlen = put_ip(ed->rep, c->phone);
	} else {
		/* scrub_lan of the whole header section */
		if (!is_lan(cfg, ip))
			return 0;
		if (ids && c->old_any)
			goto bad; /* scrub_dialog_ids may want an old address here */
#pragma unroll
		for (int j = 0; j < NA; j++)
			if (j < s->na && p < s->a[j].off + s->a[j].len && s->a[j].off < q)
				return 0; /* inside a field already rewritten */
		if (s->nb >= NB || cfg->pub_len > 15)
			goto bad;
		ed = &s->b[s->nb & (NB - 1)];
		__builtin_memcpy(ed->rep, cfg->pub_str, 16);
		ed->rlen = cfg->pub_len;
	}
	ed->off = p;
	ed->len = q - p;
	s->nb++;
	return 0;
next_range:
	/* inbound: only Call-ID, From and To can hold a literal to change
	 * (unscrub_pub), so only those lines are read, in order */
	if (!c->inbound || c->ri + 1 >= s->n_ids || c->ri + 1 >= 4)
		return 1;
	__u64 ri = c->ri + 1;
	asm volatile("" : "+r"(ri));
	ri &= 3;
	c->ri = ri;
	__u64 nli = s->ids_line[ri];
	asm volatile("" : "+r"(nli));
	nli &= MAXL - 1;
	c->li = nli;
	c->p = s->ls[nli];
	c->e = s->le[nli];
	return 0;
bad:
	s->bad = 1;
	return 1;
}

/* ---- pass 4: the new payload ---- */


static __always_inline void copy_word(__u8 *dst, const __u8 *src)
{
	__u64 w;

	/* in asm, for the same reason as word_at */
	asm volatile("%0 = *(u64 *)(%1 + 0)" : "=r"(w) : "r"(src));
	asm volatile("*(u64 *)(%0 + 0) = %1" : : "r"(dst), "r"(w) : "memory");
}

static long app_cb(__u32 i, void *ctx)
{
	struct scr *s = scr_get();
	if (!s)
		return 1;
	struct app *c = &s->ap;

	if (!s)
		return 1;
	/* the next edit: the head of b[] or the lowest not yet applied a[].
	 * The running minimum goes through (volatile) map memory: kept in
	 * registers, each of the 2^NA ways through this loop would be a
	 * different state for the verifier. */
	volatile struct app *vc = c;
	vc->best = -1;
	vc->boff = 0xffffffff;
	if (c->ib < s->nb && c->ib < NB) {
		vc->boff = s->b[c->ib & (NB - 1)].off;
		vc->best = NA;
	}
#pragma unroll
	for (int j = 0; j < NA; j++)
		if (j < s->na && !s->a_done[j] && s->a[j].off < vc->boff) {
			vc->boff = s->a[j].off;
			vc->best = j;
		}
	int best = vc->best;
	__u32 boff = vc->boff;
	__u32 keep_from = c->ip, keep, op = c->op;
	struct edit *e;
	if (best < 0) {
		/* the rest */
		keep = s->len - c->ip;
		e = NULL;
	} else {
		if (boff < c->ip) {
			s->bad = 1; /* overlap: edit_apply refuses it */
			return 1;
		}
		keep = boff - c->ip;
		if (best == NA) {
			e = &s->b[c->ib & (NB - 1)];
			c->ib++;
		} else {
			e = &s->a[best & (NA - 1)];
			s->a_done[best & (NA - 1)] = 1;
		}
	}
	if (keep > IN_SZ || op > OUT_MAX || op + keep > OUT_MAX) {
		s->bad = 1;
		return 1;
	}
	if (keep) {
		__u64 d = op, n = keep, f = keep_from;
		asm volatile("" : "+r"(d), "+r"(n), "+r"(f));
		d &= IN_SZ - 1;
		n &= IN_SZ - 1;
		f &= IN_MASK;
		/* eight bytes at a time, the last word past the span: what
		 * it writes there the next copy overwrites, or it lies past the
		 * payload (a helper call would cost more than the copy) */
		for (__u32 k = 0; k < IN_SZ / 8; k++) {
			if (8 * k >= n)
				break;
			copy_word(&s->out[d + 8 * k], &s->in[f + 8 * k]);
		}
	}
	op += keep;
	if (!e) {
		c->op = op;
		c->ip = s->len;
		return 1;
	}
	__u32 rl = e->rlen;
	if (rl > REP_SZ) {
		s->bad = 1;
		return 1;
	}
	__u64 o = op, r = rl;
	asm volatile("" : "+r"(o), "+r"(r));
	o &= IN_SZ - 1;
	if (r == 0 || r >= REP_SZ) {
		s->bad = 1;
		return 1;
	}
	/* REP_SZ bytes whatever r is: the rest is overwritten next */
#pragma unroll
	for (int k = 0; k < REP_SZ / 8; k++)
		copy_word(&s->out[o + 8 * k], (const __u8 *)e->rep + 8 * k);
	c->op = op + rl;
	c->ip = e->off + e->len;
	return 0;
}


static long cs_cb(__u32 i, void *ctx)
{
	struct scr *s = scr_get();
	if (!s)
		return 1;
	struct cs *c = &s->cs;

	if (!s || c->n == 0)
		return 1;
	__u32 n = c->n > 256 ? 256 : c->n;
	__u32 o = c->off & (IN_SZ - 1);
	n &= 0x1fc;
	if (n == 0 || n > 256)
		return 1;
	if (c->which)
		c->sum = bpf_csum_diff(0, 0, (__be32 *)&s->out[o], n, (__wsum)c->sum);
	else
		c->sum = bpf_csum_diff((__be32 *)&s->in[o], n, 0, 0, (__wsum)c->sum);
	c->off += n;
	c->n -= n;
	return 0;
}

/* The edits of fields (Request-URI, top Via, received/rport, Contacts) as
 * handle_in/handle_out make them. A global function: the verifier checks
 * it once, not once per path of the caller. Returns 0, or PASSR(reason). */
#define PASSR(why) ((why) | 0x100)
__noinline int field_edits(__u32 is_req, __u32 ruri_ok)
{
	struct scr *s = scr_get();
	__u32 z = 0;
	struct sipfast_cfg *cfg = bpf_map_lookup_elem(&sipfast_cfg, &z);

	if (!s || !cfg)
		return PASSR(SIPFAST_PASS_UNSURE);
	__u32 pub = bpf_ntohl(cfg->pub_ip), ip;
	__u32 inbound = s->g_inbound, saddr = s->g_saddr, sport = s->g_sport;
	struct sipfast_binding sigb = s->g_sigb;
	struct hp *via = &s->g_via, *ruri = &s->g_ruri, *cu = &s->g_cu;
	__u32 via_params = s->g_via_params;

	/* field edits */
	if (inbound) {
		if (is_req && ruri_ok && ipv4_exact(ruri->hs, ruri->he, &ip) && ip == pub) {
			struct sipfast_pub_key pk = { .port = ruri->port ? ruri->port : 5060 };
			struct sipfast_binding *x = bpf_map_lookup_elem(&sipfast_pub, &pk);
			if (!x)
				return PASSR(SIPFAST_PASS_NO_BINDING);
			if (add_field_edit(ruri->hs, ruri->end - ruri->hs, bpf_ntohl(x->priv_ip), x->priv_port | ((x->flags & SIPFAST_BF_CONTACT_PORT) ? HAD_PORT : 0), 0) < 0)
				return PASSR(SIPFAST_PASS_UNSURE);
		}
		if (!is_req && ipv4_exact(via->hs, via->he, &ip) && ip == pub) {
			struct sipfast_pub_key pk = { .port = via->port ? via->port : 5060 };
			struct sipfast_binding *x = bpf_map_lookup_elem(&sipfast_pub, &pk);
			if (!x)
				return PASSR(SIPFAST_PASS_NO_BINDING);
			struct sipfast_binding xb = *x;
			if (add_field_edit(via->hs, via->end - via->hs, bpf_ntohl(xb.priv_ip), xb.priv_port | ((xb.flags & SIPFAST_BF_VIA_PORT) ? HAD_PORT : 0), 0) < 0)
				return PASSR(SIPFAST_PASS_UNSURE);
			/* RFC 3581 received/rport: give the phone its own view */
			__u32 li = s->via_line & (MAXL - 1);
			__builtin_memset(&s->pm, 0, sizeof(s->pm));
			s->pm.p = via_params;
			s->pm.e = s->le[li];
			bpf_loop(16, prm_cb, NULL, 0);
			struct prm pm = s->pm;
			if (pm.p < pm.e && skip_to(pm.p, pm.e, C_SEMI) < pm.e)
				return PASSR(SIPFAST_PASS_UNSURE); /* more parameters than we read */
			int rcv = pm.rcv && ipv4_exact(pm.rcv_s, pm.rcv_e, &ip) && ip == pub;
			int rp = pm.rp && pm.rp_e > pm.rp_s && parse_num(pm.rp_s, pm.rp_e, 0) == xb.pub_port;
			/* in the order of the bytes */
			if (rcv && (!rp || pm.rcv_s < pm.rp_s)) {
				if (add_field_edit(pm.rcv_s, pm.rcv_e - pm.rcv_s, bpf_ntohl(xb.priv_ip), 5060 | 0, 0) < 0)
					return PASSR(SIPFAST_PASS_UNSURE);
				rcv = 0;
			}
			if (rp) {
				struct edit *e = &s->a[s->na & (NA - 1)];
				if (s->na >= NA)
					return PASSR(SIPFAST_PASS_UNSURE);
				e->off = pm.rp_s;
				e->len = pm.rp_e - pm.rp_s;
				e->rlen = put_dec(e->rep, 0, xb.priv_port);
				s->a_done[s->na & (NA - 1)] = 0;
				s->na++;
			}
			if (rcv && add_field_edit(pm.rcv_s, pm.rcv_e - pm.rcv_s, bpf_ntohl(xb.priv_ip), 5060 | 0, 0) < 0)
				return PASSR(SIPFAST_PASS_UNSURE);
		}
	} else if (is_req && ipv4_exact(via->hs, via->he, &ip) && is_lan(cfg, ip)) {
		/* out_via: the top Via's binding; a flag the daemon would change
		 * (the phone wrote a port this time, or stopped) is state */
		__u32 port = via->port ? via->port : 5060;
		struct sipfast_binding xb = sigb;
		if (ip != saddr || port != sport) {
			struct sipfast_priv_key k = { .ip = bpf_htonl(ip), .port = port };
			struct sipfast_binding *x = bpf_map_lookup_elem(&sipfast_priv, &k);
			if (!x)
				return PASSR(SIPFAST_PASS_NO_BINDING);
			xb = *x;
		}
		if (!!(xb.flags & SIPFAST_BF_VIA_PORT) != (via->ps != via->pe))
			return PASSR(SIPFAST_PASS_STATEFUL);
		if (add_field_edit(via->hs, via->end - via->hs, 0, xb.pub_port | ((via->ps != via->pe) ? HAD_PORT : 0), 1) < 0)
			return PASSR(SIPFAST_PASS_UNSURE);
	}
	/* Contacts */
#pragma unroll
	for (int j = 0; j < MAXC; j++) {
		if (j >= s->n_contact)
			break;
		__u32 li = s->contact_line[j] & (MAXL - 1);
		value_check(li);
		if (s->bad)
			return PASSR(SIPFAST_PASS_UNSURE);
		if (uri_find(s->vs[li], s->le[li], cu) < 0 || !ipv4_exact(cu->hs, cu->he, &ip))
			continue;
		if (inbound) {
			if (ip != pub)
				continue;
			struct sipfast_pub_key pk = { .port = cu->port ? cu->port : 5060 };
			struct sipfast_binding *x = bpf_map_lookup_elem(&sipfast_pub, &pk);
			if (!x)
				return PASSR(SIPFAST_PASS_NO_BINDING);
			if (add_field_edit(cu->hs, cu->end - cu->hs, bpf_ntohl(x->priv_ip), x->priv_port | ((x->flags & SIPFAST_BF_CONTACT_PORT) ? HAD_PORT : 0), 0) < 0)
				return PASSR(SIPFAST_PASS_UNSURE);
		} else {
			if (!is_lan(cfg, ip))
				continue;
			__u32 port = cu->port ? cu->port : 5060;
			struct sipfast_binding xb = sigb;
			if (ip != saddr || port != sport) {
				struct sipfast_priv_key k = { .ip = bpf_htonl(ip), .port = port };
				struct sipfast_binding *x = bpf_map_lookup_elem(&sipfast_priv, &k);
				if (!x)
					return PASSR(SIPFAST_PASS_NO_BINDING);
				xb = *x;
			}
			if (!!(xb.flags & SIPFAST_BF_CONTACT_PORT) != (cu->ps != cu->pe))
				return PASSR(SIPFAST_PASS_STATEFUL);
			if (add_field_edit(cu->hs, cu->end - cu->hs, 0, xb.pub_port | ((cu->ps != cu->pe) ? HAD_PORT : 0), 1) < 0)
				return PASSR(SIPFAST_PASS_UNSURE);
		}
	}

	return 0;
}

/* ---- the program ---- */

struct hdrs {
	struct iphdr ip;
	struct udphdr udp;
} __attribute__((packed));

__noinline int sip_port_has(__u32 port)
{
	__u32 z = 0;
	struct sipfast_cfg *cfg = bpf_map_lookup_elem(&sipfast_cfg, &z);

	if (!cfg)
		return 0;
#pragma unroll
	for (int i = 0; i < SIPFAST_MAX_PORTS; i++)
		if (i < cfg->n_ports && cfg->sip_ports[i] == port)
			return 1;
	return 0;
}
#define is_sip_port(cfg, port) sip_port_has(port)

/* TC_ACT_UNSPEC, not TC_ACT_OK: under TCX, OK would end the chain and skip
 * whatever else the operator runs at this hook (an SQM redirect to ifb). */
#define PASS(why)                      \
	do {                           \
		stat_inc(why);         \
		return TC_ACT_UNSPEC;  \
	} while (0)

SEC("tc")
int sipfast_ingress(struct __sk_buff *skb)
{
	__u32 z = 0;
	struct sipfast_cfg *cfg = bpf_map_lookup_elem(&sipfast_cfg, &z);
	struct scr *s = scr_get();
	struct hdrs h;

	if (!cfg || !s || !(cfg->flags & SIPFAST_F_ENABLED) || !cfg->pub_ip)
		return TC_ACT_UNSPEC;
	__u32 pub = bpf_ntohl(cfg->pub_ip); /* the map's addresses are in network order */
	int inbound = skb->ifindex == cfg->wan_ifindex;
	__u32 l3 = (inbound && (cfg->flags & SIPFAST_F_WAN_NOETH)) ? 0 : ETH_HLEN;
	if (l3 == ETH_HLEN) {
		__be16 proto;
		if (bpf_skb_load_bytes(skb, 12, &proto, 2) || proto != bpf_htons(ETH_P_IP))
			PASS(SIPFAST_PASS_NOT_SIP);
	} else if (skb->protocol != bpf_htons(ETH_P_IP)) {
		PASS(SIPFAST_PASS_NOT_SIP);
	}
	if (bpf_skb_load_bytes(skb, l3, &h, sizeof(h)))
		PASS(SIPFAST_PASS_NOT_SIP);
	if (h.ip.version != 4 || h.ip.ihl != 5 || h.ip.protocol != 17 /* UDP */ ||
	    (h.ip.frag_off & bpf_htons(0x3fff)))
		PASS(SIPFAST_PASS_NOT_SIP);
	__u32 tot = bpf_ntohs(h.ip.tot_len), ulen = bpf_ntohs(h.udp.len);
	__u16 sport = bpf_ntohs(h.udp.source), dport = bpf_ntohs(h.udp.dest);
	__u32 saddr = bpf_ntohl(h.ip.saddr), daddr = bpf_ntohl(h.ip.daddr);
	/* the datagram is the whole frame (no link padding, the tail is the
	 * payload's) and not a GSO train */
	if (skb->len != l3 + tot || ulen != tot - 20 || ulen <= 8 || skb->gso_segs > 1)
		PASS(SIPFAST_PASS_NOT_SIP);

	/* Direction, as alg_policy sees it after NAT. Inbound: to our public
	 * address from outside the LAN; conntrack will DNAT it to the binding
	 * of the public port, so that is the phone the daemon would see. */
	struct sipfast_binding *sig;
	__u32 phone = 0;
	if (inbound) {
		struct sipfast_pub_key pk = { .port = dport };
		if (daddr != pub || is_lan(cfg, saddr))
			PASS(SIPFAST_PASS_NOT_SIP);
		sig = bpf_map_lookup_elem(&sipfast_pub, &pk);
		if (!sig) {
			if (is_sip_port(cfg, sport) || is_sip_port(cfg, dport))
				PASS(SIPFAST_PASS_NO_BINDING);
			PASS(SIPFAST_PASS_NOT_SIP);
		}
		if (!is_sip_port(cfg, sport) && !is_sip_port(cfg, sig->priv_port))
			PASS(SIPFAST_PASS_NOT_SIP);
		if (!is_lan(cfg, bpf_ntohl(sig->priv_ip)))
			PASS(SIPFAST_PASS_UNSURE);
		phone = bpf_ntohl(sig->priv_ip);
	} else {
		struct sipfast_priv_key k = { .ip = bpf_htonl(saddr), .port = sport };
		if (!is_sip_port(cfg, sport) && !is_sip_port(cfg, dport))
			PASS(SIPFAST_PASS_NOT_SIP);
		if (!is_lan(cfg, saddr) || is_lan(cfg, daddr) || daddr == pub)
			PASS(SIPFAST_PASS_NOT_SIP);
		sig = bpf_map_lookup_elem(&sipfast_priv, &k);
		if (!sig)
			PASS(SIPFAST_PASS_NO_BINDING);
	}
	struct sipfast_binding sigb = *sig;

	__u64 pl = ulen - 8;
	asm volatile("" : "+r"(pl));
	if (pl == 0 || pl > PL_MAX)
		PASS(SIPFAST_PASS_UNSURE);
	__u32 plen = pl, poff = l3 + 28;
	if (bpf_skb_load_bytes(skb, poff, s->in, pl))
		PASS(SIPFAST_PASS_NOT_SIP);
	s->in[plen & IN_MASK] = 0; /* the scans' sentinel */
	/* Most SIP is not ours (INVITE, 200, BYE, REGISTER...): say so before
	 * reading the whole message. Passing is always safe. */
	if (plen < 12)
		PASS(SIPFAST_PASS_UNSURE);
	if (s->in[0] == 'S' && s->in[1] == 'I' && s->in[2] == 'P' && s->in[3] == '/' && s->in[4] == '2' &&
	    s->in[5] == '.' && s->in[6] == '0' && s->in[7] == ' ') {
		if (s->in[8] != '1')
			PASS(SIPFAST_PASS_STATEFUL);
	} else if (s->in[0] != 'A' || s->in[1] != 'C' || s->in[2] != 'K' || s->in[3] != ' ') {
		PASS(cls[s->in[0]] & C_TOK ? SIPFAST_PASS_STATEFUL : SIPFAST_PASS_UNSURE);
	}
	/* LAN -> WAN only when it will leave by the WAN: the diversion queues
	 * what goes out there (oifname WAN), not SIP to a DMZ or a VPN */
	if (!inbound && !(cfg->flags & SIPFAST_F_ANY_EGRESS)) {
		struct bpf_fib_lookup *f = &s->fib; /* in the scratch: the stack is full */
		__builtin_memset(f, 0, sizeof(*f));
		f->family = 2; /* AF_INET */
		f->l4_protocol = 17;
		f->sport = h.udp.source;
		f->dport = h.udp.dest;
		f->tot_len = tot;
		f->tos = h.ip.tos;
		f->ipv4_src = h.ip.saddr;
		f->ipv4_dst = h.ip.daddr;
		f->ifindex = skb->ifindex;
		long r = bpf_fib_lookup(skb, f, sizeof(*f), BPF_FIB_LOOKUP_SKIP_NEIGH);
		if (r != BPF_FIB_LKUP_RET_SUCCESS || f->ifindex != cfg->wan_ifindex)
			PASS(SIPFAST_PASS_NOT_SIP);
	}
	s->len = plen;
	s->nl = 0;
	s->bad = 0;
	s->end = 0;
	s->n_via = s->n_contact = s->n_callid = s->n_from = s->n_to = s->n_cseq = s->n_clen = 0;
	s->n_ids = 0;
	s->na = s->nb = 0;

	/* pass 1: CRLF lines up to the empty line, which must end the datagram
	 * (no body, nothing after: trailing octets are the daemon's) */
	s->lc.p = 0;
	s->lc.cur = 0;
	__builtin_memset(s->lq, 0, sizeof(s->lq));
	bpf_loop(PL_MAX + 2, line_cb, NULL, 0);
	if (s->bad || s->end != plen || s->nl < 2 || s->lq[0])
		PASS(SIPFAST_PASS_UNSURE);
	/* the body: s->end == plen, so none */

	/* start line: "SIP/2.0 1xx ..." or "ACK uri SIP/2.0" */
	__u32 e0 = s->le[0];
	int is_req;
	__u32 ruri_s = 0, ruri_e = 0;
	if (e0 >= 8 && at(s, 0) == 'S' && at(s, 1) == 'I' && at(s, 2) == 'P' && at(s, 3) == '/') {
		if (e0 < 12 || at(s, 4) != '2' || at(s, 5) != '.' || at(s, 6) != '0' || at(s, 7) != ' ' ||
		    !is_dig(at(s, 8)) || !is_dig(at(s, 9)) || !is_dig(at(s, 10)) || at(s, 11) != ' ')
			PASS(SIPFAST_PASS_UNSURE);
		if (at(s, 8) != '1')
			PASS(SIPFAST_PASS_STATEFUL);
		is_req = 0;
	} else {
		if (at(s, 0) != 'A' || at(s, 1) != 'C' || at(s, 2) != 'K' || at(s, 3) != ' ') {
			__u32 t = skip_in(0, e0, C_TOK);
			if (t > 0 && t < e0 && at(s, t) == ' ')
				PASS(SIPFAST_PASS_STATEFUL);
			PASS(SIPFAST_PASS_UNSURE);
		}
		is_req = 1;
		ruri_s = 4;
		ruri_e = skip_to(4, e0, C_SP);
		if (ruri_e == ruri_s || ruri_e + 8 != e0 || at(s, ruri_e + 1) != 'S' ||
		    at(s, ruri_e + 2) != 'I' || at(s, ruri_e + 3) != 'P' || at(s, ruri_e + 4) != '/' ||
		    at(s, ruri_e + 5) != '2' || at(s, ruri_e + 6) != '.' || at(s, ruri_e + 7) != '0')
			PASS(SIPFAST_PASS_UNSURE);
		/* sip_check_strict: a scheme, no '<', no '?' */
		if (skip_to(ruri_s, ruri_e, C_COLON) >= ruri_e || at(s, ruri_s) == '<' ||
		    skip_to(ruri_s, ruri_e, C_QM) < ruri_e)
			PASS(SIPFAST_PASS_UNSURE);
	}

	/* pass 2 (the header names) ran in pass 1 */
	if (s->n_via != 1 || s->n_callid != 1 || s->n_from != 1 || s->n_to != 1 ||
	    s->n_cseq != 1 || s->n_clen > 1)
		PASS(SIPFAST_PASS_UNSURE);
	/* Content-Length: 0 (a number; more would be a body we do not have) */
	if (s->n_clen) {
		__u32 li = s->clen_line & (MAXL - 1);
		__u64 cl;
		if (parse_uint(s->vs[li], s->le[li], 0xffffffff, &cl) < 0 || cl != 0)
			PASS(SIPFAST_PASS_UNSURE);
	}
	/* CSeq: number, LWS, method; a request's is its own */
	{
		__u32 li = s->cseq_line & (MAXL - 1), p = s->vs[li], e = s->le[li];
		__u32 d = skip_in(p, e, C_DIG);
		__u64 n;
		if (parse_uint(p, d, 0xffffffff, &n) < 0)
			PASS(SIPFAST_PASS_UNSURE);
		__u32 ms = skip_in(d, e, C_LWS), me = skip_in(ms, e, C_TOK);
		if (me == ms || me != e)
			PASS(SIPFAST_PASS_UNSURE);
		if (is_req && (me - ms != 3 || at(s, ms) != 'A' || at(s, ms + 1) != 'C' || at(s, ms + 2) != 'K'))
			PASS(SIPFAST_PASS_UNSURE);
	}
	/* Via: one element that parses */
	struct hp via;
	__u32 via_params;
	{
		__u32 li = s->via_line & (MAXL - 1);
		value_check(li);
		if (s->bad || via_parse(s->vs[li], s->le[li], &via, &via_params) < 0)
			PASS(SIPFAST_PASS_UNSURE);
	}
	/* Request-URI that looks like sip: must parse (sip_check_strict) */
	struct hp ruri;
	int ruri_ok = 0;
	if (is_req) {
		ruri_ok = uri_find(ruri_s, ruri_e, &ruri) == 0;
		if (!ruri_ok && ruri_e - ruri_s > 4 && lc(at(s, ruri_s)) == 's' && lc(at(s, ruri_s + 1)) == 'i' &&
		    lc(at(s, ruri_s + 2)) == 'p')
			PASS(SIPFAST_PASS_UNSURE);
	}
	__u32 ip;

	s->g_inbound = inbound;
	s->g_saddr = saddr;
	s->g_sport = sport;
	s->g_sigb = sigb;
	s->g_via = via;
	s->g_via_params = via_params;
	if (is_req)
		s->g_ruri = ruri;
	{
		int r = field_edits(is_req, ruri_ok);
		if (r)
			PASS(r & 0xff);
	}

	/* pass 3: address literals (outbound: the whole header section;
	 * inbound: the Call-ID, From and To lines) */
	s->lt.p = 0;
	s->lt.li = 0;
	s->lt.e = plen;
	s->lt.ri = 0;
	if (inbound) {
		__u64 li = s->ids_line[0];
		asm volatile("" : "+r"(li));
		li &= MAXL - 1;
		s->lt.li = li;
		s->lt.p = s->ls[li];
		s->lt.e = s->le[li];
	}
	s->lt.inbound = inbound;
	s->lt.phone = phone;
	s->lt.old_any = 0;
#pragma unroll
	for (int i = 0; i < SIPFAST_PUB_OLD; i++)
		if (cfg->pub_old[i])
			s->lt.old_any = 1;
	bpf_loop(PL_MAX + 2, lit_cb, NULL, 0);
	if (s->bad)
		PASS(SIPFAST_PASS_UNSURE);

	/* pass 4: the new payload */
	s->ap.ip = s->ap.op = s->ap.ib = 0;
	bpf_loop(NA + NB + 2, app_cb, NULL, 0);
	if (s->bad || s->ap.ip != plen)
		PASS(SIPFAST_PASS_UNSURE);
	__u64 nlen = s->ap.op;
	asm volatile("" : "+r"(nlen));
	if (nlen == 0 || nlen > OUT_MAX)
		PASS(SIPFAST_PASS_UNSURE);

	/* the payload's checksum difference, before anything changes */
#pragma unroll
	for (int k = 0; k < 4; k++) {
		s->in[(plen + k) & IN_MASK] = 0;
		s->out[(nlen + k) & (IN_SZ - 1)] = 0;
	}
	__u32 pdiff;
	{
		/* one call for both buffers where the kernel takes it (older
		 * kernels refuse sizes over 512 bytes together: then 256
		 * bytes a call, as before) */
		__u64 n_in = (plen + 3) & ~3U, n_out = (nlen + 3) & ~3U;
		asm volatile("" : "+r"(n_in), "+r"(n_out));
		long d = -1;
		if (n_in <= IN_SZ && n_out <= IN_SZ)
			d = bpf_csum_diff((__be32 *)s->in, n_in, (__be32 *)s->out, n_out, 0);
		if (d >= 0) {
			pdiff = (__u32)d;
		} else {
			s->cs.off = 0;
			s->cs.n = n_in;
			s->cs.sum = 0;
			s->cs.which = 0;
			bpf_loop(16, cs_cb, NULL, 0);
			if (s->cs.n)
				PASS(SIPFAST_PASS_UNSURE);
			s->cs.off = 0;
			s->cs.n = n_out;
			s->cs.which = 1;
			bpf_loop(16, cs_cb, NULL, 0);
			if (s->cs.n)
				PASS(SIPFAST_PASS_UNSURE);
			pdiff = (__u32)s->cs.sum;
		}
	}

	/* From here the packet changes: an error drops it. */
	if (nlen != plen && bpf_skb_change_tail(skb, l3 + 28 + nlen, 0))
		goto err;
	__u32 wl = nlen;
	asm volatile("" : "+r"(wl));
	if (wl == 0 || wl > OUT_MAX)
		goto err;
	if (bpf_skb_store_bytes(skb, poff, s->out, wl, BPF_F_RECOMPUTE_CSUM))
		goto err;
	if (nlen != plen) {
		/* the IPv4 total length and its checksum (computed here: the
		 * IPv4 checksum is never offloaded) and the UDP length, in one
		 * store; a helper call costs more than the arithmetic */
		__be16 oul = h.udp.len, nul = bpf_htons(8 + nlen);
		h.ip.tot_len = bpf_htons(20 + 8 + nlen);
		h.ip.check = 0;
		h.udp.len = nul;
		__u16 hw[10];
		__u32 sum = 0;
		__builtin_memcpy(hw, &h, sizeof(hw));
#pragma unroll
		for (int k = 0; k < 10; k++)
			sum += hw[k];
		sum = (sum & 0xffff) + (sum >> 16);
		sum = (sum & 0xffff) + (sum >> 16);
		h.ip.check = (__u16)~sum;
		if (bpf_skb_store_bytes(skb, l3 + 2, (__u8 *)&h + 2, 24, BPF_F_RECOMPUTE_CSUM))
			goto err;
		/* the pseudo header's length (the only change that counts for a
		 * CHECKSUM_PARTIAL packet) */
		if (bpf_l4_csum_replace(skb, l3 + 26, oul, nul, BPF_F_PSEUDO_HDR | BPF_F_MARK_MANGLED_0 | 2))
			goto err;
		/* the UDP header's length joins the payload's difference (both
		 * at even offsets, so in the same byte lanes of the sum) */
		__u64 t = (__u64)pdiff + (__u16)~oul + (__u16)nul;
		t = (t & 0xffffffff) + (t >> 32);
		t = (t & 0xffffffff) + (t >> 32);
		pdiff = (__u32)t;
	}
	/* the payload (and UDP length): counted only when the checksum is
	 * complete in the packet, not for CHECKSUM_PARTIAL */
	if (bpf_l4_csum_replace(skb, l3 + 26, 0, pdiff, BPF_F_MARK_MANGLED_0))
		goto err;
	skb->mark |= cfg->mark;
	stat_inc(inbound ? SIPFAST_HANDLED_IN : SIPFAST_HANDLED_OUT);
	return TC_ACT_UNSPEC;
err:
	stat_inc(SIPFAST_ERRORS);
	return TC_ACT_SHOT;
}
