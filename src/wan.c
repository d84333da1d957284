/* wan: STUB until the WAN-following module is merged (issue 8, point 1).
 *
 * Changing the public address at run time means rewriting the NAT table's
 * rules, every binding's and pinhole's kernel element and their conntrack
 * entries; this stub does none of that, so it applies nothing and says so.
 * reload() then reports wan.interface / wan.public_address as needing a
 * restart and keeps the running values. */
#include "wan.h"
#include "conf.h"
#include "log.h"

int wan_reconfigure(const struct conf *c, uint64_t now)
{
	(void)now;
	log_warn("wan: interface %s / public address change needs a restart in this build",
		 c->wan_if);
	return -1;
}
