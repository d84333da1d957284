/* nftcmd: libnftables, loaded only while it runs. See nftcmd.h. */
#include "nftcmd.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include <nftables/libnftables.h>

/* The library's own prototypes, so a changed signature fails the build. */
struct nftcmd_lib {
	__typeof__(nft_ctx_new) *ctx_new;
	__typeof__(nft_ctx_free) *ctx_free;
	__typeof__(nft_ctx_buffer_output) *buffer_output;
	__typeof__(nft_ctx_buffer_error) *buffer_error;
	__typeof__(nft_ctx_get_error_buffer) *get_error_buffer;
	__typeof__(nft_run_cmd_from_buffer) *run_cmd_from_buffer;
};

static void *nftcmd_sym(void *h, const char *name, int *missing)
{
	void *p = dlsym(h, name);

	if (!p)
		*missing = 1;
	return p;
}

int nftcmd_run(const char *text, char *err, size_t errlen)
{
	/* The soname first; the bare name where a distribution ships only
	 * that (the -dev symlink). */
	void *h = dlopen("libnftables.so.1", RTLD_NOW | RTLD_LOCAL);
	struct nftcmd_lib l;
	struct nft_ctx *ctx;
	int missing = 0, ret;

	if (!h)
		h = dlopen("libnftables.so", RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		if (errlen)
			snprintf(err, errlen, "cannot load libnftables: %s", dlerror());
		return -1;
	}
	l.ctx_new = nftcmd_sym(h, "nft_ctx_new", &missing);
	l.ctx_free = nftcmd_sym(h, "nft_ctx_free", &missing);
	l.buffer_output = nftcmd_sym(h, "nft_ctx_buffer_output", &missing);
	l.buffer_error = nftcmd_sym(h, "nft_ctx_buffer_error", &missing);
	l.get_error_buffer = nftcmd_sym(h, "nft_ctx_get_error_buffer", &missing);
	l.run_cmd_from_buffer = nftcmd_sym(h, "nft_run_cmd_from_buffer", &missing);
	if (missing) {
		if (errlen)
			snprintf(err, errlen, "libnftables lacks a function we call");
		dlclose(h);
		return -1;
	}
	ctx = l.ctx_new(NFT_CTX_DEFAULT);
	if (!ctx) {
		if (errlen)
			snprintf(err, errlen, "cannot create a libnftables context");
		dlclose(h);
		return -1;
	}
	l.buffer_output(ctx);
	l.buffer_error(ctx);
	ret = l.run_cmd_from_buffer(ctx, text);
	if (ret != 0 && errlen) {
		const char *e = l.get_error_buffer(ctx);

		/* nft's first line names the problem; the rest is a caret
		 * drawing for a terminal. */
		snprintf(err, errlen, "%.*s", e && *e ? (int)strcspn(e, "\n") : 12,
			 e && *e ? e : "(no message)");
	}
	l.ctx_free(ctx);
	dlclose(h);
	return ret ? -1 : 0;
}
