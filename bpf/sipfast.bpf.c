/* sipfast: the tc fast path. PLACEHOLDER until the real program (branch
 * h/fpprog) is merged: it defines the maps and the entry point the loader
 * (src/fastpath.c) expects, by name only (bpf/sipfast.h), and passes every
 * packet on untouched, counting it as "not SIP". With it attached nothing
 * is handled and nothing is marked: every SIP message goes to the queue,
 * exactly as without a fast path. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "sipfast.h"

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

SEC("tc")
int sipfast_ingress(struct __sk_buff *skb)
{
	__u32 k = SIPFAST_PASS_NOT_SIP;
	__u64 *n = bpf_map_lookup_elem(&sipfast_stats, &k);

	if (n)
		*n += 1;
	/* TC_ACT_UNSPEC (TCX_NEXT), not TC_ACT_OK: the interface's other tc
	 * programs and filters still run (SQM's ingress redirect to an ifb,
	 * for one); TC_ACT_OK would end the chain here. */
	return TC_ACT_UNSPEC;
}

char LICENSE[] SEC("license") = "GPL";
