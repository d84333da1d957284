// SPDX-License-Identifier: GPL-2.0
/* sipguard: fail closed while the diversion is missing. Runs at tc egress
 * of the WAN interface (a TCX link or a clsact filter: `nft flush ruleset`
 * and `iptables -F` cannot remove either). The diversion marks everything
 * it queues (queue.guard_mark_bit) and the fast path marks what it
 * rewrote; forwarded UDP to or from a SIP port that carries neither mark
 * left the forward hook without passing through us, with the LAN's
 * addresses inside: dropped. The contract is bpf/sipguard.h.
 *
 * Never dropped: the router's own datagrams (a socket on the skb, or no
 * ingress interface: nothing forwarded them), TCP (the relay's business),
 * non-first fragments (no ports to judge by), IPv6 unless configured, and
 * IPv6 with extension headers other than a fragment header. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "sipguard.h"

#define IP_OFFMASK 0x1fff
#define V6_FRAG 44

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sipguard_cfg);
} sipguard_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SIPGUARD_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} sipguard_stats SEC(".maps");

char LICENSE[] SEC("license") = "GPL";

static __always_inline void count(__u32 k)
{
	__u64 *v = bpf_map_lookup_elem(&sipguard_stats, &k);

	if (v)
		*v += 1; /* per-CPU: no other writer */
}

/* The UDP header's offset, or 0: not UDP, or no ports to look at. */
static __always_inline __u32 udp_at(struct __sk_buff *skb, __u32 l3, __u32 flags)
{
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr ip;

		if (bpf_skb_load_bytes(skb, l3, &ip, sizeof(ip)) < 0 || ip.version != 4 ||
		    ip.protocol != IPPROTO_UDP || (ip.frag_off & bpf_htons(IP_OFFMASK)))
			return 0;
		return l3 + (__u32)ip.ihl * 4;
	}
	if (skb->protocol == bpf_htons(ETH_P_IPV6) && (flags & SIPGUARD_F_IPV6)) {
		struct ipv6hdr ip6;
		__u8 fh[8];

		if (bpf_skb_load_bytes(skb, l3, &ip6, sizeof(ip6)) < 0)
			return 0;
		if (ip6.nexthdr == IPPROTO_UDP)
			return l3 + sizeof(ip6);
		/* the first fragment of a large INVITE: ports follow */
		if (ip6.nexthdr != V6_FRAG ||
		    bpf_skb_load_bytes(skb, l3 + sizeof(ip6), fh, sizeof(fh)) < 0 ||
		    fh[0] != IPPROTO_UDP || ((fh[2] << 8 | fh[3]) & 0xfff8))
			return 0;
		return l3 + sizeof(ip6) + sizeof(fh);
	}
	return 0;
}

SEC("tc")
int sipguard_egress(struct __sk_buff *skb)
{
	struct sipguard_cfg *cfg;
	__u32 k = 0, off, i;
	__u16 pp[2];
	int sip = 0;

	cfg = bpf_map_lookup_elem(&sipguard_cfg, &k);
	if (!cfg || !(cfg->flags & SIPGUARD_F_ENABLED))
		return TC_ACT_OK;
	off = udp_at(skb, (cfg->flags & SIPGUARD_F_NOETH) ? 0 : ETH_HLEN, cfg->flags);
	if (!off || bpf_skb_load_bytes(skb, off, pp, sizeof(pp)) < 0)
		return TC_ACT_OK;
	pp[0] = bpf_ntohs(pp[0]);
	pp[1] = bpf_ntohs(pp[1]);
	for (i = 0; i < SIPGUARD_MAX_PORTS; i++) {
		if (i >= cfg->n_ports)
			break;
		if (cfg->ports[i] == pp[0] || cfg->ports[i] == pp[1])
			sip = 1;
	}
	if (!sip)
		return TC_ACT_OK;
	/* The router's own: only forwarded datagrams pass the diversion. */
	if (skb->sk || !skb->ingress_ifindex) {
		count(SIPGUARD_LOCAL);
		return TC_ACT_OK;
	}
	if (skb->mark & cfg->mark_ok) {
		count(SIPGUARD_PASSED);
		return TC_ACT_OK;
	}
	count(SIPGUARD_DROPPED);
	return TC_ACT_SHOT;
}
