#include "binding.h"

#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "fastpath.h"
#include "log.h"
#include "mem.h"
#include "nftmap.h"
#include "siphash.h"
#include "stats.h"

static struct binding *pool;
static uint32_t pool_size, pool_used, free_head; /* free list through next_priv */
static uint32_t *h_priv, *h_pub, hmask;
static uint8_t port_used[65536 / 8];
static uint32_t pub_ip;
static uint16_t sig_min, sig_max, med_min, med_max, sig_cursor, med_cursor;
/* timers.binding_idle is read at each use, so SIGHUP changes it. */
static const struct conf *bcf;

/* Bindings per LAN host, for the fair share of a scarce table: one host
 * may open thousands of ports (a REGISTER flood from 5,000 sockets, or a
 * PBX). Counted per slot of a keyed hash of the address: hosts that share
 * a slot share a share (rare with 4096 slots, and not aimable: the key is
 * secret), and the memory is fixed. */
#define HOST_SLOTS 4096
static uint32_t host_n[HOST_SLOTS], hosts_active, share_floor;

static uint32_t host_slot(uint32_t ip) { return (uint32_t)siphash_table(&ip, sizeof(ip)) & (HOST_SLOTS - 1); }

static int used(uint32_t p) { return p < 65536 && (port_used[p >> 3] >> (p & 7)) & 1; }
static void set_used(uint32_t p, int v)
{
	if (v)
		port_used[p >> 3] |= 1u << (p & 7);
	else
		port_used[p >> 3] &= ~(1u << (p & 7));
}

/* Private (ip, port) is chosen by a LAN host, the public port may follow a
 * conntrack entry: both keyed with SipHash (per-start key), so no host can
 * line its flows up in one chain. */
static uint32_t hash_priv(uint32_t ip, uint16_t port)
{
	uint8_t k[6];

	memcpy(k, &ip, 4);
	memcpy(k + 4, &port, 2);
	return (uint32_t)siphash_table(k, sizeof(k)) & hmask;
}

static uint32_t hash_pub(uint16_t port) { return (uint32_t)siphash_table(&port, sizeof(port)) & hmask; }

int binding_init(const struct conf *c, uint32_t public_ip)
{
	uint32_t hs = 1;

	pool_size = c->max_bindings;
	memset(host_n, 0, sizeof(host_n));
	hosts_active = 0;
	share_floor = c->max_pinholes_per_phone;
	while (hs < pool_size * 2)
		hs <<= 1;
	pool = mem_table(pool_size, sizeof(*pool));
	h_priv = mem_table(hs, sizeof(*h_priv));
	h_pub = mem_table(hs, sizeof(*h_pub));
	hmask = hs - 1;
	if (!pool || !h_priv || !h_pub)
		return -1;
	/* Entries are handed out from the untouched end first, so an idle
	 * daemon does not keep the whole pool resident. */
	free_head = 0;
	pool_used = 0;
	memset(port_used, 0, sizeof(port_used));
	for (uint32_t p = 0; p < 1024; p++)
		set_used(p, 1); /* never hand out privileged ports */
	pub_ip = public_ip;
	sig_min = c->sig_port_min;
	sig_max = c->sig_port_max;
	med_min = c->media_port_min & ~1u;
	med_max = c->media_port_max;
	sig_cursor = sig_min;
	med_cursor = med_min;
	bcf = c;
	return 0;
}

void binding_fini(void)
{
	mem_table_free(pool, pool_size, sizeof(*pool));
	mem_table_free(h_priv, hmask + 1, sizeof(*h_priv));
	mem_table_free(h_pub, hmask + 1, sizeof(*h_pub));
	pool = NULL;
	h_priv = h_pub = NULL;
	pool_size = 0;
}

uint32_t binding_public_ip(void) { return pub_ip; }

/* ---- WAN address change ---------------------------------------------- */

void binding_set_public(uint32_t public_ip)
{
	pub_ip = public_ip;
	fastpath_set_public(public_ip);
	for (uint32_t i = 0; i < pool_used; i++) {
		struct binding *b = &pool[i];
		uint32_t n = b->kind == BIND_MEDIA ? 2 : 1;

		if (!b->in_use)
			continue;
		/* delete then add: the kernel refuses an add that would change
		 * an existing element's mapping (nftmap keeps both, in order) */
		for (uint32_t k = 0; k < n; k++) {
			struct addr pa = addr_v4(b->priv_ip), pu = addr_v4(public_ip);
			nftmap_snat_del(&pa, (uint16_t)(b->priv_port + k));
			if (public_ip)
				nftmap_snat_add(&pa, (uint16_t)(b->priv_port + k), &pu,
						(uint16_t)(b->pub_port + k));
		}
	}
}

struct binding *binding_find(uint32_t ip, uint16_t port)
{
	if (!pool)
		return NULL;
	for (uint32_t i = h_priv[hash_priv(ip, port)]; i; i = pool[i - 1].next_priv) {
		struct binding *b = &pool[i - 1];
		if (b->priv_ip == ip && b->priv_port == port)
			return b;
	}
	return NULL;
}

static struct binding *find_pub_exact(uint16_t port)
{
	for (uint32_t i = h_pub[hash_pub(port)]; i; i = pool[i - 1].next_pub)
		if (pool[i - 1].pub_port == port)
			return &pool[i - 1];
	return NULL;
}

struct binding *binding_find_public(uint16_t port)
{
	struct binding *b;

	if (!pool)
		return NULL;
	if ((b = find_pub_exact(port)))
		return b;
	/* the RTCP half of a media pair is hashed under its RTP port */
	if (port > 0 && (b = find_pub_exact((uint16_t)(port - 1))) && b->kind == BIND_MEDIA)
		return b;
	return NULL;
}

static int span_free(uint32_t p, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		if (p + i > 65535 || used(p + i))
			return 0;
	return 1;
}

/* Next free public port (or pair) from a range, round robin so that a port
 * just released is not handed straight to the next call. */
static uint16_t alloc_range(uint16_t lo, uint16_t hi, uint16_t *cursor, uint32_t n)
{
	uint32_t span = (uint32_t)hi - lo + 1, step = n;
	uint32_t c = *cursor;

	if (hi < lo || span < n)
		return 0;
	for (uint32_t tries = 0; tries < span; tries += step) {
		if (c + n - 1 > hi)
			c = lo;
		if (span_free(c, n)) {
			*cursor = (uint16_t)(c + n > hi ? lo : c + n);
			return (uint16_t)c;
		}
		c += step;
	}
	return 0;
}

struct binding *binding_get(uint32_t ip, uint16_t port, enum binding_kind kind,
			    uint16_t want_pub, uint64_t now)
{
	struct binding *b = binding_find(ip, port);
	uint32_t n = kind == BIND_MEDIA ? 2 : 1;
	uint16_t pub = 0;

	if (b)
		return b;
	if (!free_head && pool_used == pool_size) {
		STAT_INC(drop_limit);
		STAT_INC(refused_bindings_full);
		LOG_RL(LOG_LVL_WARN, "%u.%u.%u.%u:%u refused: binding table full (limits.bindings=%u)",
		       ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255, port, pool_size);
		return NULL;
	}
	/* The fair share (as for dialogs and pinholes, dialog.c): only once
	 * the table is 3/4 full does a host holding its share of those 3/4
	 * among the hosts holding bindings get refused. */
	uint32_t hs = host_slot(ip);
	uint64_t scarce = (uint64_t)pool_size * 3 / 4;
	if (stats[ST_bindings] >= scarce) {
		uint64_t share = scarce / (hosts_active ? hosts_active : 1);
		if (share < share_floor)
			share = share_floor;
		if (host_n[hs] >= share) {
			STAT_INC(drop_limit);
			STAT_INC(refused_bindings_share);
			LOG_RL(LOG_LVL_WARN, "%u.%u.%u.%u:%u refused: binding table over 3/4 full (%llu of "
			       "limits.bindings=%u) and the host holds its share (%u bindings)",
			       ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255, port,
			       (unsigned long long)stats[ST_bindings], pool_size, host_n[hs]);
			return NULL;
		}
	}
	if (kind == BIND_MEDIA && port == 65535)
		return NULL;
	/* One private port, one SNAT element: a port that is already the RTCP
	 * half of a media pair, or a pair whose RTCP port is already bound
	 * ("m=audio 10002" and "m=video 10003" on one host), is refused. */
	struct binding *lo = port > 0 ? binding_find(ip, (uint16_t)(port - 1)) : NULL;
	if ((lo && lo->kind == BIND_MEDIA) ||
	    (kind == BIND_MEDIA && binding_find(ip, (uint16_t)(port + 1)))) {
		LOG_RL(LOG_LVL_WARN, "%u.%u.%u.%u:%u overlaps a media pair already bound",
		       ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255, port);
		return NULL;
	}
	if (want_pub && span_free(want_pub, n))
		pub = want_pub;
	else if (span_free(port, n))
		pub = port;
	else if (kind != BIND_SIG)
		pub = alloc_range(med_min, med_max, &med_cursor, n);
	else
		pub = alloc_range(sig_min, sig_max, &sig_cursor, 1);
	if (!pub) {
		STAT_INC(drop_no_binding);
		LOG_RL(LOG_LVL_WARN, "no free public port for %u.%u.%u.%u:%u",
		       ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255, port);
		return NULL;
	}
	uint32_t idx = free_head ? free_head : ++pool_used;
	b = &pool[idx - 1];
	if (free_head)
		free_head = b->next_priv;
	memset(b, 0, sizeof(*b));
	b->priv_ip = ip;
	b->priv_port = port;
	b->pub_port = pub;
	b->kind = (uint8_t)kind;
	b->in_use = 1;
	b->idle_until = now + (uint64_t)bcf->binding_idle_s * 1000u;
	if (want_pub && pub == want_pub)
		b->flags |= BF_ADOPTED;
	for (uint32_t i = 0; i < n; i++) {
		set_used(pub + i, 1);
		struct addr pa = addr_v4(ip), pu = addr_v4(pub_ip);
		if (pub_ip) /* none while the WAN has no address: binding_set_public adds it */
			nftmap_snat_add(&pa, (uint16_t)(port + i), &pu, (uint16_t)(pub + i));
	}
	uint32_t hp = hash_priv(ip, port), hq = hash_pub(pub);
	b->next_priv = h_priv[hp];
	h_priv[hp] = idx;
	b->next_pub = h_pub[hq];
	h_pub[hq] = idx;
	if (host_n[hs]++ == 0)
		hosts_active++;
	STAT_INC(bindings);
	STAT_INC(bindings_created);
	fastpath_binding_set(b);
	return b;
}

static void unlink_chain(uint32_t *head, uint32_t idx, int pub)
{
	for (uint32_t *pp = head; *pp; ) {
		struct binding *x = &pool[*pp - 1];
		uint32_t *next = pub ? &x->next_pub : &x->next_priv;
		if (*pp == idx) {
			*pp = *next;
			return;
		}
		pp = next;
	}
}

static void binding_free(struct binding *b)
{
	uint32_t idx = (uint32_t)(b - pool) + 1;
	uint32_t n = b->kind == BIND_MEDIA ? 2 : 1;

	fastpath_binding_del(b);
	for (uint32_t i = 0; i < n; i++) {
		set_used(b->pub_port + i, 0);
		struct addr pa = addr_v4(b->priv_ip);
		nftmap_snat_del(&pa, (uint16_t)(b->priv_port + i));
	}
	unlink_chain(&h_priv[hash_priv(b->priv_ip, b->priv_port)], idx, 0);
	unlink_chain(&h_pub[hash_pub(b->pub_port)], idx, 1);
	uint32_t hs = host_slot(b->priv_ip);
	if (host_n[hs] && --host_n[hs] == 0)
		hosts_active--;
	b->in_use = 0;
	b->next_priv = free_head;
	free_head = idx;
	STAT_DEC(bindings);
}

void binding_set_flag(struct binding *b, uint8_t flag, int on)
{
	uint8_t f = on ? (uint8_t)(b->flags | flag) : (uint8_t)(b->flags & ~flag);

	if (f == b->flags)
		return;
	b->flags = f;
	fastpath_binding_set(b); /* the fast path writes the port as the phone did */
}

void binding_fastpath_hold(struct binding *b, int hold)
{
	if (hold) {
		if (b->fp_hold++ == 0)
			fastpath_binding_del(b);
	} else if (b->fp_hold && --b->fp_hold == 0) {
		fastpath_binding_set(b);
	}
}

void binding_ref(struct binding *b)
{
	b->refs++;
}

void binding_unref(struct binding *b, uint64_t now)
{
	if (b->refs == 0)
		return;
	if (--b->refs)
		return;
	if (b->kind != BIND_SIG)
		binding_free(b);
	else
		b->idle_until = now + (uint64_t)bcf->binding_idle_s * 1000u;
}

void binding_register(struct binding *b, uint32_t peer, int any, uint32_t expires_s, uint64_t now)
{
	uint32_t key = any ? 0 : peer;

	if (b->reg_peer && (expires_s == 0 || key != b->reg_key)) {
		struct addr rk = addr_v4(b->reg_key);
		nftmap_dnat_unref(&rk, b->pub_port);
		b->reg_peer = 0;
		STAT_DEC(registrations);
		binding_unref(b, now);
	}
	if (expires_s == 0)
		return;
	if (!b->reg_peer) {
		binding_ref(b);
		struct addr k = addr_v4(key), pa = addr_v4(b->priv_ip);
		nftmap_dnat_ref(&k, b->pub_port, &pa, b->priv_port);
		STAT_INC(registrations);
	}
	b->reg_peer = peer;
	b->reg_key = key;
	b->reg_until = now + (uint64_t)expires_s * 1000u;
}

void binding_expire(uint64_t now)
{
	for (uint32_t i = 0; i < pool_used; i++) {
		struct binding *b = &pool[i];
		if (!b->in_use)
			continue;
		if (b->reg_peer && b->reg_until <= now)
			binding_register(b, 0, 0, 0, now);
		if (b->in_use && b->refs == 0 && b->idle_until <= now)
			binding_free(b);
	}
}

void binding_repush(void)
{
	if (!pub_ip) /* no WAN address: nothing to NAT to (binding_get agrees) */
		return;
	for (uint32_t i = 0; i < pool_used; i++) {
		const struct binding *b = &pool[i];
		uint32_t n = b->kind == BIND_MEDIA ? 2 : 1;

		if (!b->in_use)
			continue;
		struct addr pa = addr_v4(b->priv_ip), pu = addr_v4(pub_ip);
		for (uint32_t k = 0; k < n; k++)
			nftmap_snat_add(&pa, (uint16_t)(b->priv_port + k), &pu,
					(uint16_t)(b->pub_port + k));
	}
}

void binding_dump(FILE *f, uint64_t now)
{
	for (uint32_t i = 0; i < pool_used; i++) {
		struct binding *b = &pool[i];
		if (!b->in_use)
			continue;
		fprintf(f, "%s %u.%u.%u.%u:%u -> %u.%u.%u.%u:%u refs %u%s",
			b->kind == BIND_MEDIA ? "media" : b->kind == BIND_RTCP ? "rtcp" : "sip",
			b->priv_ip >> 24, (b->priv_ip >> 16) & 255, (b->priv_ip >> 8) & 255, b->priv_ip & 255,
			b->priv_port,
			pub_ip >> 24, (pub_ip >> 16) & 255, (pub_ip >> 8) & 255, pub_ip & 255,
			b->pub_port, b->refs, b->flags & BF_ADOPTED ? " adopted" : "");
		if (b->reg_peer)
			fprintf(f, " registered %llus",
				(unsigned long long)((b->reg_until - now) / 1000));
		fputc('\n', f);
	}
}

const struct binding *binding_next(uint32_t *cursor)
{
	while (*cursor < pool_used) {
		const struct binding *b = &pool[(*cursor)++];
		if (b->in_use)
			return b;
	}
	return NULL;
}

void binding_save(FILE *f, uint64_t now)
{
	for (uint32_t i = 0; i < pool_used; i++) {
		struct binding *b = &pool[i];
		if (!b->in_use || b->kind != BIND_SIG)
			continue;
		fprintf(f, "B %08x %u %u %u %08x %08x %llu\n", b->priv_ip, b->priv_port, b->pub_port,
			b->flags, b->reg_peer, b->reg_key,
			(unsigned long long)(b->reg_peer && b->reg_until > now ? (b->reg_until - now) / 1000 : 0));
	}
}

int binding_restore_line(const char *line, uint64_t now)
{
	unsigned ip, port, pub, flags, peer, key;
	unsigned long long left;

	if (sscanf(line, "B %x %u %u %u %x %x %llu", &ip, &port, &pub, &flags, &peer, &key, &left) != 7 ||
	    port == 0 || port > 65535 || pub > 65535)
		return -1;
	struct binding *b = binding_get(ip, (uint16_t)port, BIND_SIG, (uint16_t)pub, now);
	if (!b)
		return -1;
	if (b->pub_port != pub)
		log_warn("state: %u.%u.%u.%u:%u comes back on public port %u, not %u",
			 ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255, port, b->pub_port, pub);
	b->flags = (uint8_t)(flags & (BF_VIA_PORT | BF_CONTACT_PORT | BF_ADOPTED));
	fastpath_binding_set(b);
	if (peer && left)
		binding_register(b, peer, key == 0, left > 0xffffffffu ? 0xffffffffu : (uint32_t)left, now);
	return 0;
}
