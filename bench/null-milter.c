/*
 * null-milter.c - reference for the milter benchmark: a libmilter filter that decides
 * nothing, with exactly the protocol steps mxsane-milter asks for (no CONNECT step, the
 * client coming with the MAIL macros; no reply to HELO; the same macro lists; no headers,
 * body or unknown commands; ACCEPT at DATA; 512 KiB connection-thread stacks).  Postfix with it, against Postfix with mxsane-milter, shows what the checks cost;
 * against Postfix with no milter, what any libmilter filter costs Postfix on this machine.
 *
 * usage: null-milter SOCKET      (libmilter syntax: inet:PORT@HOST, unix:/path)
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <libmilter/mfapi.h>

#include "../milter/shape.h"

static sfsistat nm_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1,
                             unsigned long f2, unsigned long f3, unsigned long *pf0,
                             unsigned long *pf1, unsigned long *pf2, unsigned long *pf3)
{
	(void)f2;
	(void)f3;
	milter_shape(ctx, 0, true, f0, f1, pf0, pf1); /* mxsane-milter's own */
	*pf2 = *pf3 = 0;
	return SMFIS_CONTINUE;
}

static sfsistat nm_connect(SMFICTX *ctx, char *host, _SOCK_ADDR *sa)
{
	(void)ctx;
	(void)host;
	(void)sa;
	return SMFIS_NOREPLY;
}

static sfsistat nm_helo(SMFICTX *ctx, char *helo)
{
	(void)ctx;
	(void)helo;
	return SMFIS_NOREPLY;
}

static sfsistat nm_envelope(SMFICTX *ctx, char **argv)
{
	(void)ctx;
	(void)argv;
	return SMFIS_CONTINUE;
}

static sfsistat nm_data(SMFICTX *ctx)
{
	(void)ctx;
	return SMFIS_ACCEPT;
}

static sfsistat nm_eom(SMFICTX *ctx)
{
	(void)ctx;
	return SMFIS_CONTINUE;
}

int main(int argc, char **argv)
{
	static char name[] = "null-milter";
	struct smfiDesc d;
	pthread_attr_t ta;

	if (argc != 2) {
		fprintf(stderr, "usage: null-milter SOCKET\n");
		return 64;
	}
	memset(&d, 0, sizeof(d));
	d.xxfi_name = name;
	d.xxfi_version = SMFI_VERSION;
	d.xxfi_negotiate = nm_negotiate;
	d.xxfi_connect = nm_connect;
	d.xxfi_helo = nm_helo;
	d.xxfi_envfrom = nm_envelope;
	d.xxfi_envrcpt = nm_envelope;
	d.xxfi_data = nm_data;
	d.xxfi_eom = nm_eom;
	if (pthread_attr_init(&ta) == 0) {
		pthread_attr_setstacksize(&ta, 512u * 1024u);
		pthread_setattr_default_np(&ta);
		pthread_attr_destroy(&ta);
	}
	if (smfi_setconn(argv[1]) != MI_SUCCESS || smfi_register(d) != MI_SUCCESS) {
		fprintf(stderr, "null-milter: cannot use %s\n", argv[1]);
		return 69;
	}
	return smfi_main() == MI_SUCCESS ? 0 : 69;
}
