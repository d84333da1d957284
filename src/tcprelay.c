/* tcprelay: the transparent SIP/TCP relay. See tcprelay.h.
 *
 * Side 0 of a connection is the phone (accepted from TPROXY, its local
 * address is the original destination), side 1 the far end (our own
 * connection from the public address). Bytes read on a side are framed;
 * each unit is rewritten into the other side's send buffer. */
#include "tcprelay.h"

#include "addr.h"
#include "alg.h"
#include "binding.h"
#include "conf.h"
#include "ct.h"
#include "log.h"
#include "nat66.h"
#include "nftcmd.h"
#include "nftmap.h"
#include "rules.h"
#include "sipframe.h"
#include "stats.h"
#include "tproxy.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

/* A send buffer holds at least one whole rewritten message on top of what
 * is queued, so a side is read only while that much is free. Rewriting
 * grows a message by at most the edit arena (edit.h: EDIT_ARENA). */
#define OUT_CAP   (2 * TCPRELAY_MSG_MAX + 8192)
#define OUT_ROOM  (TCPRELAY_MSG_MAX + 8192)
#define LISTENER  0xffffffffu
#define LISTENER6 0xfffffffeu
/* Kernel buffers of every relayed socket, fixed: with autotuning a side
 * that stops reading lets the other fill up to tcp_rmem's maximum (32 MiB
 * on many systems) per connection before backpressure reaches the sender.
 * Two SIP messages' worth bounds the kernel memory of 1,000 connections. */
#define SOCK_BUF  (2 * TCPRELAY_MSG_MAX)

struct side {
	int fd;
	uint8_t *in;          /* TCPRELAY_MSG_MAX */
	uint32_t in_len;
	struct sipframe fr;
	uint8_t *out;         /* OUT_CAP: bytes to send to this side */
	uint32_t out_len;
	uint32_t ev;          /* epoll events registered */
	uint8_t reg;          /* in the epoll set */
	uint8_t eof;          /* read 0: the peer's FIN */
	uint8_t shut;         /* we sent our FIN (shutdown SHUT_WR) */
	uint8_t stalled;      /* whole units wait in `in` for room on the other side */
};

struct conn {
	uint8_t used, connected, raw;
	uint8_t ph;                     /* the phone's side: 0 (it connected), 1 (we connect to it) */
	uint8_t v6;                     /* routed IPv6: relayed from the phone's own address */
	struct addr phone_ip, far_ip;
	uint16_t phone_port, far_port;
	struct binding *b;              /* the phone's signalling binding, referenced */
	uint64_t last;
	struct side s[2];
};

static const struct conf *cf;
static uint32_t pub_ip;
static int ep = -1, lfd = -1, lfd6 = -1, rules_ours, rules6_ours;
/* Why SIP/TCP over IPv6 is not relayed (NULL: it is), for status. */
static const char *v6_off;
static uint16_t listen_port; /* host order, for tproxy_install on repair */
/* A descriptor held in reserve: with none left, accept() fails and the
 * listener stays readable; giving this one up lets us accept and reset. */
static int spare_fd = -1;
static struct conn *pool;
static uint32_t npool;           /* limits.tcp_connections at start */
static uint32_t nconn;
static int open_failed;          /* tcprelay_open failed: status says so */
/* The public ports in the kernel set in_tcp (what the last sync left
 * there), and when to try again after nft refused. 8 KiB, one bit a port. */
static uint8_t in_tcp_have[65536 / 8];
static uint64_t in_tcp_retry_at, in_tcp_last;
static int in_tcp_dirty = 1;

/* alg_packet takes an IP/UDP datagram: a message is framed into one here
 * (the same header for every message of a direction; length and addresses
 * filled in), so TCP goes through exactly the UDP policy. IPv6 has a
 * 40-byte header. */
static uint8_t dgram[48 + TCPRELAY_MSG_MAX];
static uint8_t rewritten[48 + TCPRELAY_MSG_MAX + 8192];

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)(v >> 16)); put16(p + 2, (uint16_t)v); }

/* The datagram header for n bytes of message from src to dst; its length. */
static uint32_t dgram_header(const struct addr *src, const struct addr *dst, uint16_t sport, uint16_t dport,
			     uint32_t n)
{
	uint32_t h;

	if (addr_is_v4(src)) {
		h = 20;
		memset(dgram, 0, 28);
		dgram[0] = 0x45;
		put16(dgram + 2, (uint16_t)(28 + n));
		dgram[8] = 64;
		dgram[9] = 17;
		put32(dgram + 12, addr_get_v4(src));
		put32(dgram + 16, addr_get_v4(dst));
	} else {
		h = 40;
		memset(dgram, 0, 48);
		dgram[0] = 0x60;
		put16(dgram + 4, (uint16_t)(8 + n));
		dgram[6] = 17;
		dgram[7] = 64;
		memcpy(dgram + 8, src->b, 16);
		memcpy(dgram + 24, dst->b, 16);
		/* never on the wire: pkt_parse_udp refuses a zero UDP
		 * checksum over IPv6 (RFC 8200 8.1), and verifies none */
		put16(dgram + h + 6, 0xffff);
	}
	put16(dgram + h, sport);
	put16(dgram + h + 2, dport);
	put16(dgram + h + 4, (uint16_t)(8 + n));
	return h + 8;
}

static void ev_set(struct conn *c, int i)
{
	struct side *s = &c->s[i], *o = &c->s[!i];
	uint32_t want = 0;

	if (s->fd < 0)
		return;
	if (!s->eof && s->in_len < TCPRELAY_MSG_MAX && OUT_CAP - o->out_len >= OUT_ROOM &&
	    (i == 1 || c->connected))
		want |= EPOLLIN;
	if (s->out_len || (i == 1 && !c->connected))
		want |= EPOLLOUT;
	if (want == s->ev && s->reg == (want != 0))
		return;
	/* Nothing wanted: out of the set, or a hang-up (which epoll reports
	 * whatever the mask) would wake us in a loop while we wait for the
	 * other side. */
	struct epoll_event e = { .events = want, .data.u32 = (uint32_t)((c - pool) * 2 + i) };
	int op = !want ? EPOLL_CTL_DEL : s->reg ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	if (epoll_ctl(ep, op, s->fd, &e) == 0) {
		s->ev = want;
		s->reg = want != 0;
	}
}

/* Close both sides; `rst` sends RST rather than FIN (an abortive close
 * propagates one, and is what a connection we refuse gets). */
static void conn_close(struct conn *c, int rst, uint64_t now)
{
	for (int i = 0; i < 2; i++) {
		struct side *s = &c->s[i];
		if (s->fd >= 0) {
			if (rst) {
				struct linger l = { 1, 0 };
				setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
			}
			close(s->fd);   /* also leaves the epoll set */
		}
		free(s->in);
		free(s->out);
	}
	if (c->b)
		binding_unref(c->b, now);
	memset(c, 0, sizeof(*c));
	c->s[0].fd = c->s[1].fd = -1;
	nconn--;
	STAT_INC(tcp_closed);
	stats[ST_tcp_conns] = nconn;
}

/* One framed unit from side i into the other side's send buffer. */
static void relay_unit(struct conn *c, int i, const uint8_t *p, uint32_t n, uint64_t now)
{
	struct side *o = &c->s[!i];
	int far = i != c->ph;
	const struct addr *src = far ? &c->far_ip : &c->phone_ip, *dst = far ? &c->phone_ip : &c->far_ip;
	uint16_t sport = far ? c->far_port : c->phone_port, dport = far ? c->phone_port : c->far_port;
	uint32_t out_len = 0;
	uint32_t h = dgram_header(src, dst, sport, dport, n);

	memcpy(dgram + h, p, n);
	/* The direction matters to routed IPv6 when lan.networks names no
	 * IPv6 prefix: the phone's side is the LAN side (alg.h). */
	if (alg_packet_framed(dgram, h + n, rewritten, sizeof(rewritten), &out_len, now,
			      far ? ALG_DIR_IN : ALG_DIR_OUT) == ALG_DROP) {
		STAT_INC(tcp_msgs_dropped);
		return;
	}
	const uint8_t *q = p;
	uint32_t qn = n;
	if (out_len > h) {
		q = rewritten + h;
		qn = out_len - h;
	}
	if (qn > OUT_CAP - o->out_len) {
		/* cannot happen while ev_set keeps OUT_ROOM free; never
		 * forward half a message */
		STAT_INC(tcp_msgs_dropped);
		return;
	}
	memcpy(o->out + o->out_len, q, qn);
	o->out_len += qn;
	STAT_INC(tcp_msgs);
	/* a 200 to a REGISTER or an INVITE from the WAN may have made a
	 * Contact reachable: sync the set in_tcp at the end of this round */
	if (far)
		in_tcp_dirty = 1;
}

static int side_flush(struct conn *c, int i)
{
	struct side *s = &c->s[i];

	while (s->out_len) {
		ssize_t w = send(s->fd, s->out, s->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			if (errno == EINTR)
				continue;
			return -1;
		}
		memmove(s->out, s->out + w, s->out_len - (uint32_t)w);
		s->out_len -= (uint32_t)w;
	}
	/* The peer's FIN reached us and everything before it is sent (nothing
	 * whole still waits on its side): pass it on. */
	if (!s->out_len && c->s[!i].eof && !c->s[!i].stalled && !s->shut) {
		shutdown(s->fd, SHUT_WR);
		s->shut = 1;
	}
	return 0;
}

static int side_frame(struct conn *c, int i, uint64_t now);

/* Read side i; frame; relay. -1: the connection must be reset. */
static int side_read(struct conn *c, int i, uint64_t now)
{
	struct side *s = &c->s[i], *o = &c->s[!i];

	if (c->raw) {
		/* TLS: bytes as they come, untouched */
		ssize_t r = recv(s->fd, o->out + o->out_len, OUT_CAP - o->out_len, MSG_DONTWAIT);
		if (r == 0)
			s->eof = 1;
		else if (r < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -1;
		else
			o->out_len += (uint32_t)r;
		return 0;
	}
	ssize_t r = recv(s->fd, s->in + s->in_len, TCPRELAY_MSG_MAX - s->in_len, MSG_DONTWAIT);
	if (r == 0) {
		s->eof = 1;
		return 0;
	}
	if (r < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	if (i == 0 && s->in_len == 0 && c->s[1].out_len == 0 && s->in[0] == 0x16 &&
	    !(c->s[0].fr.scanned)) {
		/* A TLS record (handshake, 0x16) where SIP should start: relay
		 * it untouched; an ALG cannot read or rewrite TLS. */
		c->raw = 1;
		STAT_INC(tcp_tls_passed);
		memcpy(o->out, s->in, (size_t)r);
		o->out_len = (uint32_t)r;
		return 0;
	}
	s->in_len += (uint32_t)r;
	return side_frame(c, i, now);
}

/* The whole units in side i's buffer, into the other side's send buffer,
 * while it has room for one more. -1: unframeable, reset. */
static int side_frame(struct conn *c, int i, uint64_t now)
{
	struct side *s = &c->s[i], *o = &c->s[!i];

	s->stalled = 0;
	for (;;) {
		uint32_t u;
		enum sipframe_rc rc = sipframe_next(&s->fr, s->in, s->in_len, TCPRELAY_MSG_MAX, &u);
		if (rc == SIPFRAME_MORE)
			break;
		if (rc < 0) {
			char a[ADDR_STRLEN];
			addr_fmt(a, i != c->ph ? &c->far_ip : &c->phone_ip, 0);
			STAT_INC(tcp_frame_errors);
			LOG_RL(LOG_LVL_WARN, "SIP/TCP from %s %s: %s: connection reset",
			       i != c->ph ? "WAN" : "LAN", a, sipframe_strerror(rc));
			return -1;
		}
		if (rc == SIPFRAME_KEEPALIVE) {
			STAT_INC(keepalives);
			if (OUT_CAP - o->out_len >= u) {
				memcpy(o->out + o->out_len, s->in, u);
				o->out_len += u;
			}
		} else {
			relay_unit(c, i, s->in, u, now);
		}
		memmove(s->in, s->in + u, s->in_len - u);
		s->in_len -= u;
		sipframe_reset(&s->fr);
		if (s->in_len && OUT_CAP - o->out_len < OUT_ROOM) {
			/* backpressure: the rest waits in s->in, framed again
			 * once the other side has drained (conn_event) */
			s->stalled = 1;
			break;
		}
	}
	return 0;
}

static void sock_bufs(int fd)
{
	int b = SOCK_BUF;

	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &b, sizeof(b));
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &b, sizeof(b));
}

static int sock_nb(int fd)
{
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return 0;
}

/* Routed IPv6: connect from the phone's own address and port, since
 * nothing is translated (a provider that checks where a registration came
 * from, or answers to the connection's port, sees the phone); from another
 * port of that address when that one is busy here (the phone's connection
 * to us holds it only on the other side; another of ours may).
 * A phone of the NAT66 LAN prefix (wan.nat66_*): from its public image
 * (nat66.h, port kept), the address the messages name after alg's NAT66
 * edits, rather than from the ULA left to the router's `snat ip6 prefix`.
 * Then nothing of this connection is NATed: the far end's answers carry
 * our socket's own address, which `socket transparent` finds on any
 * kernel (its IPv6 lookup follows a SNATed reply back to the original
 * address only since 2025's "netfilter: socket: Lookup orig tuple for
 * IPv6 SNAT"; before that the SYN-ACK, NATed back to the ULA, would be
 * forwarded to the phone), and a missing or different NAT66 rule on the
 * router cannot put the ULA on the wire under a message that names the
 * public address.
 * A masqueraded phone (wan.masquerade6): as an IPv4 one, from the WAN's
 * IPv6 address and the phone's binding port, the host:port alg writes
 * into its Via and Contact. */
static int far_open6(struct conn *c, uint64_t now)
{
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	sock_bufs(fd);
	struct addr src = c->phone_ip;
	uint16_t sport = c->phone_port;
	if (conf_has_nat66(cf) &&
	    nat66_map(&cf->nat66_lan.net, &cf->nat66_pub.net, cf->nat66_lan.plen, &c->phone_ip, &src))
		STAT_INC(tcp_nat66);
	if (conf_is_masq6(cf, &c->phone_ip)) {
		const struct addr *pub = alg_public(6);
		if (!pub) { /* nothing to masquerade behind: alg drops its messages too */
			close(fd);
			return -1;
		}
		src = *pub;
		if (!c->b && (c->b = binding_get(&c->phone_ip, c->phone_port, BIND_SIG, 0, now)))
			binding_ref(c->b);
		sport = c->b ? c->b->pub_port : 0;
	}
	struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_port = htons(sport) };
	memcpy(&a.sin6_addr, src.b, 16);
	if (setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof(one)) < 0) {
		close(fd);
		return -1;
	}
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		STAT_INC(tcp_port_fallback);
		a.sin6_port = 0;
		if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
			close(fd);
			return -1;
		}
	}
	sock_nb(fd);
	struct sockaddr_in6 d = { .sin6_family = AF_INET6, .sin6_port = htons(c->far_port) };
	memcpy(&d.sin6_addr, c->far_ip.b, 16);
	if (connect(fd, (struct sockaddr *)&d, sizeof(d)) < 0 && errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Connect side 1 from the public address and the phone's binding port
 * (as NAT would), else from the public address and any port, else from
 * wherever routing says (masquerade then gives the public address). */
static int far_open(struct conn *c, uint64_t now)
{
	if (c->v6)
		return far_open6(c, now);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	sock_bufs(fd);
	if (c->ph == 1) {
		/* To the phone, from the caller's own address and port, as
		 * DNAT would show it (a phone may take calls only from its
		 * registrar); `socket transparent` brings its answers here. */
		struct sockaddr_in f = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(addr_get_v4(&c->far_ip)),
					 .sin_port = htons(c->far_port) };
		struct sockaddr_in p = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(addr_get_v4(&c->phone_ip)),
					 .sin_port = htons(c->phone_port) };
		if (setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof(one)) < 0 ||
		    bind(fd, (struct sockaddr *)&f, sizeof(f)) < 0 ||
		    (connect(fd, (struct sockaddr *)&p, sizeof(p)) < 0 && errno != EINPROGRESS)) {
			close(fd);
			return -1;
		}
		sock_nb(fd);
		return fd;
	}
	c->b = binding_get(&c->phone_ip, c->phone_port, BIND_SIG, 0, now);
	if (c->b)
		binding_ref(c->b);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(pub_ip) };
	a.sin_port = htons(c->b ? c->b->pub_port : 0);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		STAT_INC(tcp_port_fallback);
		a.sin_port = 0;
		if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 && errno != EADDRNOTAVAIL) {
			close(fd);
			return -1;
		}
	}
	sock_nb(fd);
	struct sockaddr_in d = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(addr_get_v4(&c->far_ip)),
				 .sin_port = htons(c->far_port) };
	if (connect(fd, (struct sockaddr *)&d, sizeof(d)) < 0 && errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	return fd;
}

/* The address and port of a socket address of either family. */
static struct addr sa_addr(const struct sockaddr_storage *ss, uint16_t *port)
{
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)ss;
		*port = ntohs(a6->sin6_port);
		return addr_v6(&a6->sin6_addr);
	}
	const struct sockaddr_in *a4 = (const struct sockaddr_in *)ss;
	*port = ntohs(a4->sin_port);
	return addr_v4(ntohl(a4->sin_addr.s_addr));
}

static void do_accept(int l, uint64_t now)
{
	for (int k = 0; k < 64; k++) {
		struct sockaddr_storage pa, la;
		socklen_t pl = sizeof(pa), ll = sizeof(la);
		char text[ADDR_STRLEN];
		int fd = accept4(l, (struct sockaddr *)&pa, &pl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0 && (errno == EMFILE || errno == ENFILE) && spare_fd >= 0) {
			close(spare_fd);
			fd = accept4(l, NULL, NULL, SOCK_CLOEXEC);
			if (fd >= 0) {
				struct linger lg = { 1, 0 };
				setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
				close(fd);
			}
			STAT_INC(tcp_refused_limit);
			spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
			return;
		}
		if (fd < 0)
			return;
		STAT_INC(tcp_accepted);
		if (getsockname(fd, (struct sockaddr *)&la, &ll) < 0)
			goto refuse;
		uint16_t pport, lport;
		struct addr phone = sa_addr(&pa, &pport), local = sa_addr(&la, &lport), peer = phone;
		uint32_t per = 0;
		int v6 = !addr_is_v4(&phone);
		if (v6 && lport == listen_port && !conf_is_sip_port(cf, lport)) {
			/* Straight to our listener, not diverted: TPROXY keeps the
			 * original destination, a SIP port. Relaying it would connect
			 * us to ourselves, from a WAN host's address when lan.networks
			 * names no IPv6 prefix. (IPv4 refuses it as a WAN connection
			 * to a port no binding has.) A relay port that is also a SIP
			 * port cannot tell; the default (0: any free one) never is. */
			STAT_INC(tcp_refused_limit);
			addr_fmt(text, &phone, 0);
			LOG_RL(LOG_LVL_WARN, "SIP/TCP from %s to the relay's own port refused: not diverted", text);
			goto refuse;
		}
		struct binding *in_b = NULL;
		/* Routed IPv6 comes only from the LAN side (the TPROXY rule's
		 * interface test); with an IPv6 prefix in lan.networks it must
		 * be in it, as IPv4 must (the ALG would not see it otherwise). */
		int lan = v6 ? !conf_has_lan_v6(cf) || conf_is_lan(cf, &phone) : conf_is_lan(cf, &phone);
		if (!lan && !v6) {
			/* From the WAN (the set in_tcp let it in): to a Contact
			 * that is registered, or in a call, now; from its registrar
			 * when the registration is tied to one (sip.inbound_from). */
			uint32_t far = addr_get_v4(&phone);
			in_b = binding_find_public(lport);
			if (!in_b || in_b->kind != BIND_SIG || !addr_is_v4(&in_b->priv_ip) ||
			    addr_get_v4(&local) != pub_ip ||
			    !((in_b->registered && (addr_is_any(&in_b->reg_key) || addr_eq(&in_b->reg_key, &phone))) ||
			      in_b->dialogs)) {
				STAT_INC(tcp_inbound_refused);
				LOG_RL(LOG_LVL_WARN, "SIP/TCP from WAN %u.%u.%u.%u to port %u refused: "
				       "no registered or in-dialog Contact there for it", far >> 24, (far >> 16) & 255,
				       (far >> 8) & 255, far & 255, lport);
				goto refuse;
			}
			phone = in_b->priv_ip;
			lan = 1;
		}
		struct conn *c = NULL;
		for (uint32_t j = 0; j < npool; j++) {
			if (pool[j].used && addr_eq(&pool[j].phone_ip, &phone))
				per++;
			else if (!pool[j].used && !c)
				c = &pool[j];
		}
		if (!c || per >= cf->max_tcp_per_phone || !lan) {
			STAT_INC(tcp_refused_limit);
			addr_fmt(text, &phone, 0);
			LOG_RL(LOG_LVL_WARN, "SIP/TCP from %s refused: %s", text,
			       !c ? "limits.tcp_connections reached" : per >= cf->max_tcp_per_phone ?
			       "limits.tcp_connections_per_phone reached" : "not from lan.networks");
			goto refuse;
		}
		memset(c, 0, sizeof(*c));
		c->used = 1;
		c->v6 = (uint8_t)v6;
		c->s[0].fd = fd;
		c->s[1].fd = -1;
		c->phone_ip = phone;
		if (in_b) {
			c->ph = 1;
			c->phone_port = in_b->priv_port;
			c->far_ip = peer;
			c->far_port = pport;
			c->b = in_b;
			binding_ref(in_b);
			STAT_INC(tcp_inbound);
		} else {
			c->phone_port = pport;
			c->far_ip = local;
			c->far_port = lport;
		}
		if (v6)
			STAT_INC(tcp_ipv6);
		c->last = now;
		nconn++;
		stats[ST_tcp_conns] = nconn;
		for (int i = 0; i < 2; i++) {
			c->s[i].in = malloc(TCPRELAY_MSG_MAX);
			c->s[i].out = malloc(OUT_CAP);
		}
		if (!c->s[0].in || !c->s[1].in || !c->s[0].out || !c->s[1].out) {
			conn_close(c, 1, now);
			continue;
		}
		sock_nb(fd);
		c->s[1].fd = far_open(c, now);
		if (c->s[1].fd < 0) {
			STAT_INC(tcp_connect_errors);
			conn_close(c, 1, now);
			continue;
		}
		ev_set(c, 0);
		ev_set(c, 1);
		continue;
refuse:
		{
			struct linger lg = { 1, 0 };
			setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
			close(fd);
		}
	}
}

static void conn_event(struct conn *c, int i, uint32_t evs, uint64_t now)
{
	struct side *s = &c->s[i];

	if (i == 1 && !c->connected && (evs & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
		int err = 0;
		socklen_t el = sizeof(err);
		getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &el);
		if (err) {
			/* the far end refused: the phone sees a refusal too */
			STAT_INC(tcp_connect_errors);
			conn_close(c, 1, now);
			return;
		}
		c->connected = 1;
	}
	if (evs & EPOLLIN) {
		if (side_read(c, i, now) < 0) {
			conn_close(c, 1, now);
			return;
		}
		c->last = now;
		/* The kernel must agree with the SDP before the SDP leaves
		 * (the same rule as the UDP path in main.c). */
		if (nftmap_urgent())
			nftmap_commit();
		if (ct_urgent())
			ct_commit();
	} else if (evs & EPOLLERR) {
		conn_close(c, 1, now);   /* RST from this side: RST to the other */
		return;
	}
	for (int pass = 0; pass < 2; pass++) {
		for (int j = 0; j < 2; j++) {
			if (c->s[j].fd >= 0 && (j == 0 || c->connected) && side_flush(c, j) < 0) {
				conn_close(c, 1, now);
				return;
			}
		}
		/* Room made by the flush: units that waited for it go now
		 * (the socket may have nothing more to wake us with). */
		int again = 0;
		for (int j = 0; j < 2; j++) {
			if (c->s[j].stalled && OUT_CAP - c->s[!j].out_len >= OUT_ROOM) {
				if (side_frame(c, j, now) < 0) {
					conn_close(c, 1, now);
					return;
				}
				again = 1;
			}
		}
		if (!again)
			break;
	}
	/* Both FINs passed on and nothing left to send: done. */
	if (c->s[0].eof && c->s[1].eof && c->s[0].shut && c->s[1].shut) {
		conn_close(c, 0, now);
		return;
	}
	ev_set(c, 0);
	ev_set(c, 1);
}

/* One nft command: `verb` the ports of `bits` into the set in_tcp, at most
 * IN_TCP_CHUNK a command. 0, or -1 when nft refused one. */
#define IN_TCP_CHUNK 512
static int in_tcp_apply(const char *verb, const uint8_t *bits)
{
	static char text[128 + IN_TCP_CHUNK * 7];
	char err[160];
	int rc = 0;
	uint32_t p = 0;

	while (p < 65536) {
		int n = snprintf(text, sizeof(text), "%s element ip %s_tcp in_tcp { ", verb, cf->nft_table), k = 0;
		for (; p < 65536 && k < IN_TCP_CHUNK; p++) {
			if (bits[p >> 3] & (1u << (p & 7)))
				n += snprintf(text + n, sizeof(text) - (size_t)n, "%s%u", k++ ? ", " : "", p);
		}
		if (!k)
			break;
		snprintf(text + n, sizeof(text) - (size_t)n, " }\n");
		if (nftcmd_run(text, err, sizeof(err)) < 0) {
			LOG_RL(LOG_LVL_WARN, "tcprelay: nft refused to %s public ports in %s_tcp in_tcp: %s", verb,
			       cf->nft_table, err);
			rc = -1;
		}
	}
	return rc;
}

/* The set in_tcp: the public ports of signalling bindings that are
 * registered or in a call, so the WAN may open a new connection to them and
 * nothing else. Synced from the binding table (a scan, at most once a tick
 * and only when a WAN message was relayed or a tick passed): registrations
 * and calls change at call rate, not packet rate, and the diff is usually
 * empty (no nft call then). */
static void in_tcp_sync(uint64_t now)
{
	static uint8_t want[65536 / 8], add[65536 / 8], del[65536 / 8];
	uint32_t cur = 0;
	const struct binding *b;
	int any = 0;

	if (now < in_tcp_retry_at)
		return;
	in_tcp_last = now;
	memset(want, 0, sizeof(want));
	while ((b = binding_next(&cur)))
		if (b->kind == BIND_SIG && addr_is_v4(&b->priv_ip) && (b->registered || b->dialogs))
			want[b->pub_port >> 3] |= (uint8_t)(1u << (b->pub_port & 7));
	for (size_t j = 0; j < sizeof(want); j++) {
		add[j] = want[j] & (uint8_t)~in_tcp_have[j];
		del[j] = in_tcp_have[j] & (uint8_t)~want[j];
		any |= add[j] | del[j];
	}
	in_tcp_dirty = 0;
	if (!any)
		return;
	/* a delete refused (the element is gone already) must not hold up
	 * the adds: separate commands */
	int rc = in_tcp_apply("delete", del);
	if (in_tcp_apply("add", add) < 0)
		rc = -1;
	if (rc < 0) {
		/* start again from an empty view: flush, re-add all */
		char text[96], err[96];
		snprintf(text, sizeof(text), "flush set ip %s_tcp in_tcp\n", cf->nft_table);
		memset(in_tcp_have, 0, sizeof(in_tcp_have));
		if (nftcmd_run(text, err, sizeof(err)) == 0 && in_tcp_apply("add", want) == 0)
			memcpy(in_tcp_have, want, sizeof(want));
		else
			in_tcp_retry_at = now + 10000;   /* no table (sipalgd -R without it): quietly later */
		return;
	}
	memcpy(in_tcp_have, want, sizeof(want));
}

/* The IPv6 listener on the same port, and its rules. Optional: a router
 * without IPv6, or sip.ipv6: false, relays IPv4 only; v6_off says why. */
static void open6(const struct conf *c, int rules)
{
	int one = 1, e = 0;

	if (!c->sip_ipv6) {
		v6_off = "sip.ipv6: false";
		return;
	}
	if (rules && rules_ipv6_off()) {
		/* no IPv6 on this router (rules.c found out and warned) */
		v6_off = rules_ipv6_off();
		log_info("tcprelay: SIP/TCP over IPv6 not relayed: %s", v6_off);
		return;
	}
	lfd6 = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lfd6 < 0) {
		v6_off = "no IPv6 sockets";
		e = errno;
		goto fail;
	}
	if (setsockopt(lfd6, SOL_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0 ||
	    setsockopt(lfd6, SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof(one)) < 0) {
		v6_off = "IPV6_TRANSPARENT refused";
		e = errno;
		goto fail;
	}
	setsockopt(lfd6, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	sock_bufs(lfd6);
	struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT,
				  .sin6_port = htons(listen_port) };
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = LISTENER6 };
	if (bind(lfd6, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lfd6, 256) < 0 ||
	    epoll_ctl(ep, EPOLL_CTL_ADD, lfd6, &ev) < 0) {
		v6_off = "no IPv6 listener on the relay's port";
		e = errno;
		goto fail;
	}
	if (rules) {
		if (tproxy_install6(c, listen_port) < 0) {
			v6_off = "nft or policy routing refused the IPv6 rules";
			goto fail;
		}
		rules6_ours = 1;
	}
	v6_off = NULL;
	log_info("tcprelay: SIP/TCP over IPv6 relayed too (routed: from the phone's own address, "
		 "bytes unchanged)");
	return;
fail:
	log_warn("tcprelay: SIP/TCP over IPv6 not relayed (%s%s%s): it crosses the router unseen, "
		 "without media pinholes", v6_off, e ? ": " : "", e ? strerror(e) : "");
	if (lfd6 >= 0)
		close(lfd6);
	lfd6 = -1;
}

int tcprelay_open(const struct conf *c, uint32_t public_ip, int rules)
{
	cf = c;
	pub_ip = public_ip;
	/* Two descriptors per relayed connection: the pool must fill before
	 * descriptors run out (an accept failing with EMFILE would leave the
	 * listener readable forever). */
	struct rlimit rl;
	rlim_t need = 2 * (rlim_t)c->max_tcp_conns + 256;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < need) {
		rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need ? need : rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		if (rl.rlim_cur < need)
			log_warn("tcprelay: only %llu descriptors (RLIMIT_NOFILE): fewer than %u connections fit",
				 (unsigned long long)rl.rlim_cur, c->max_tcp_conns);
	}
	npool = c->max_tcp_conns;
	pool = calloc(npool, sizeof(*pool));
	memset(in_tcp_have, 0, sizeof(in_tcp_have));   /* a new table: an empty set */
	in_tcp_retry_at = 0;
	in_tcp_dirty = 1;
	spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	ep = epoll_create1(EPOLL_CLOEXEC);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (!pool || ep < 0 || lfd < 0)
		goto fail;
	int one = 1;
	/* IP_TRANSPARENT: accept connections to addresses that are not ours
	 * (TPROXY), and answer from them; accepted sockets inherit it. */
	if (setsockopt(lfd, SOL_IP, IP_TRANSPARENT, &one, sizeof(one)) < 0) {
		log_err("tcprelay: IP_TRANSPARENT: %s", strerror(errno));
		goto fail;
	}
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	sock_bufs(lfd); /* accepted sockets inherit them */
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY),
				 .sin_port = htons(c->tcp_relay_port) };
	socklen_t al = sizeof(a);
	if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lfd, 256) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&a, &al) < 0) {
		log_err("tcprelay: listener: %s", strerror(errno));
		goto fail;
	}
	struct epoll_event e = { .events = EPOLLIN, .data.u32 = LISTENER };
	if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &e) < 0)
		goto fail;
	for (uint32_t j = 0; j < npool; j++)
		pool[j].s[0].fd = pool[j].s[1].fd = -1;
	listen_port = ntohs(a.sin_port);
	if (rules) {
		if (tproxy_install(c, listen_port) < 0)
			goto fail;
		rules_ours = 1;
	}
	log_info("tcprelay: SIP/TCP relay listening on port %u (max %u connections, %u per phone)",
		 ntohs(a.sin_port), npool, cf->max_tcp_per_phone);
	open6(c, rules);
	open_failed = 0;
	return 0;
fail:
	tcprelay_close();
	/* a copy left by a daemon killed before us would reset SIP/TCP (its
	 * failclosed chain) while we run without the relay: take it away */
	if (rules)
		tproxy_remove(c);
	open_failed = 1;
	return -1;
}

void tcprelay_close(void)
{
	if (pool) {
		for (uint32_t j = 0; j < npool; j++)
			if (pool[j].used)
				conn_close(&pool[j], 1, 0);
		free(pool);
		pool = NULL;
	}
	if (rules_ours || rules6_ours)
		tproxy_remove(cf);
	rules_ours = rules6_ours = 0;
	if (lfd >= 0)
		close(lfd);
	if (lfd6 >= 0)
		close(lfd6);
	lfd6 = -1;
	if (spare_fd >= 0)
		close(spare_fd);
	spare_fd = -1;
	if (ep >= 0)
		close(ep);
	lfd = ep = -1;
}

int tcprelay_rules_expected(void)
{
	return rules_ours + (rules_ours && rules6_ours);
}

int tcprelay_rules_repair(void)
{
	if (!rules_ours)
		return 0;
	/* tproxy_install removes a stale copy first and reads the running
	 * configuration (the SIP ports after a reload); the set comes back
	 * empty and is filled again at once. */
	int rc = tproxy_install(cf, listen_port);
	if (rc == 0 && rules6_ours && tproxy_install6(cf, listen_port) < 0)
		rc = -1;
	memset(in_tcp_have, 0, sizeof(in_tcp_have));
	in_tcp_retry_at = 0;
	in_tcp_sync(0);
	return rc;
}

void tcprelay_set_public(uint32_t public_ip)
{
	pub_ip = public_ip;
}

int tcprelay_fd(void)
{
	return ep;
}

void tcprelay_serve(uint64_t now)
{
	struct epoll_event evs[64];
	int n = epoll_wait(ep, evs, 64, 0);

	for (int k = 0; k < n; k++) {
		uint32_t id = evs[k].data.u32;
		if (id == LISTENER || id == LISTENER6) {
			do_accept(id == LISTENER ? lfd : lfd6, now);
			continue;
		}
		struct conn *c = &pool[id / 2];
		/* a connection closed earlier in this batch: its slot may be
		 * free or already reused by an accept; events are level
		 * triggered, a stale one is harmless */
		if (!c->used || c->s[id % 2].fd < 0)
			continue;
		conn_event(c, (int)(id % 2), evs[k].events, now);
	}
	/* at most every 50 ms under load (a scan of the bindings), else the tick */
	if (in_tcp_dirty && now - in_tcp_last >= 50)
		in_tcp_sync(now);
}

void tcprelay_status(FILE *out)
{
	if (open_failed)
		fprintf(out, "tcp relay: NOT running (it could not start, see the log): SIP over TCP "
			"leaves unrewritten\n");
	if (!pool)
		return;
	uint32_t reach = 0;
	for (size_t j = 0; j < sizeof(in_tcp_have); j++)
		reach += (uint32_t)__builtin_popcount(in_tcp_have[j]);
	fprintf(out, "tcp relay: %u connections (max %u, %u per phone), %llu refused at limits, "
		"%u public ports open to new connections from the WAN (%llu taken), "
		"%llu TLS passed untouched%s\n", nconn, npool, cf->max_tcp_per_phone,
		(unsigned long long)stats[ST_tcp_refused_limit], reach, (unsigned long long)stats[ST_tcp_inbound],
		(unsigned long long)stats[ST_tcp_tls_passed],
		stats[ST_tcp_tls_passed] ? " (an ALG cannot rewrite TLS: see docs/limits.md)" : "");
	const char *br = tproxy_bridge_nf();
	if (br)
		fprintf(out, "warning: tcp relay: bridge-nf-call-iptables is 1 and %s %s a bridge: SIP/TCP "
			"entering by a bridge cannot reach the relay; set it to 0, or sip.tcp: false\n",
			br, strchr(br, ',') ? "are each" : "is");
	if (v6_off)
		fprintf(out, "tcp relay ipv6: off (%s): SIP/TCP over IPv6 crosses the router unseen\n", v6_off);
	else
		fprintf(out, "tcp relay ipv6: on (routed, from the phone's own address; NAT66: from its public "
			"image), %llu connections taken, %llu of them NAT66\n",
			(unsigned long long)stats[ST_tcp_ipv6], (unsigned long long)stats[ST_tcp_nat66]);
}

void tcprelay_tick(uint64_t now)
{
	if (!pool)
		return;
	/* UDP registrations and expiries change the set as well */
	in_tcp_sync(now);
	for (uint32_t j = 0; j < npool; j++) {
		if (pool[j].used && now - pool[j].last > (uint64_t)TCPRELAY_IDLE_S * 1000u) {
			STAT_INC(tcp_idle_closed);
			conn_close(&pool[j], 1, now);
		}
	}
}
