/*
 * shape.h - the protocol steps and macros mxsane-milter asks the MTA for, in one place:
 * milter/callbacks.c negotiates with it, and so does bench/null-milter.c, the milter
 * benchmark's do-nothing reference, which must cost the MTA exactly the same steps.
 */
#ifndef MXSANE_MILTER_SHAPE_H
#define MXSANE_MILTER_SHAPE_H

#include <stdbool.h>

#include <libmilter/mfapi.h>

/* No reply to CONNECT and HELO, which always continue: two round trips less per session. */
#define SHAPE_NOREPLY (SMFIP_NR_CONN | SMFIP_NR_HELO)

/*
 * The answer to xxfi_negotiate, from what the MTA offers (f0: actions, f1: protocol
 * steps): the actions wanted among `actions`; no header, end-of-header, body or unknown
 * command steps (DATA is kept: the answer to it ends the message early when there is no
 * header to add); SHAPE_NOREPLY when `noreply`; and where the MTA lets the filter choose
 * its macros (smfi_setsymlist), the shortest lists, the client's address, name and port and
 * the server's port coming with MAIL so that the CONNECT step is not needed at all (the
 * ports tell mail submitted on the machine from SMTP: see local_submission() in
 * callbacks.c).  Postfix evaluates and sends at
 * every step only what is asked for (its default lists are longer).  A step that needs
 * nothing asks for "j" (the MTA's host name): an empty list would mean "the MTA's
 * defaults".
 */
static inline void milter_shape(SMFICTX *ctx, unsigned long actions, bool noreply, unsigned long f0,
                                unsigned long f1, unsigned long *pf0, unsigned long *pf1)
{
	static char mail[] = "i {auth_authen} {client_addr} {client_name} {client_port} "
	                     "{daemon_port}",
	            rcpt[] = "i", eom[] = "i", none[] = "j";
	const unsigned long skip = SMFIP_NOHDRS | SMFIP_NOEOH | SMFIP_NOBODY | SMFIP_NOUNKNOWN;
	bool lists = (f0 & SMFIF_SETSYMLIST) != 0;

	*pf0 = f0 & (actions | SMFIF_SETSYMLIST);
	*pf1 = f1 & (skip | (noreply ? SHAPE_NOREPLY : 0) | (lists ? SMFIP_NOCONNECT : 0));
	if (lists) {
		smfi_setsymlist(ctx, SMFIM_CONNECT, none);
		smfi_setsymlist(ctx, SMFIM_HELO, none);
		smfi_setsymlist(ctx, SMFIM_ENVFROM, mail);
		smfi_setsymlist(ctx, SMFIM_ENVRCPT, rcpt);
		smfi_setsymlist(ctx, SMFIM_DATA, none);
		smfi_setsymlist(ctx, SMFIM_EOM, eom);
	}
}

#endif
