/*
 * rpolicy.h - policies per hosted recipient domain (recipient_policies_file): a hosting
 * provider's customers each choose how mxsane treats mail to them.
 *
 * The file has one entry per line, "DOMAIN key=value ...", '#' comments and blank lines as
 * in every list file (listfile.h).  DOMAIN is "customer.example" (that name) or
 * ".customer.example" (its subdomains), UTF-8 allowed; the keys are
 *   check_sender=true|false          check the sender of mail to this domain
 *   mode=enforce|monitor             monitor: reject/tempfail are logged and warned only
 *   CLASS=reject|tempfail|warn|accept for CLASS null_mx, nxdomain, no_mail_host, broken_mx,
 *                                    mx_cname, dns_error (dns_error never reject)
 * each at most once per line.  A key the line does not give is the main configuration's:
 * an entry is complete when loaded (the base given to rpolicies_load), so applying one is a
 * lookup, never a merge.  For a recipient domain the most specific entry applies (the exact
 * name, then the nearest parent's suffix entry: domtab.h), else the main configuration.
 *
 * A table is built by one thread (configuration load) and then only read: lookups are safe
 * from any number of threads.  Errors name the file and line: "PATH:12: unknown key 'foo'".
 */
#ifndef MXSANE_RPOLICY_H
#define MXSANE_RPOLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "verdict.h"

/* One domain's settings, complete (see above).  Small: a million entries fit in tens of
 * MiB. */
struct rpolicy {
	uint32_t name_off;         /* the entry in the table's pool (rpolicies_name) */
	uint8_t check_sender;      /* bool */
	uint8_t mode;              /* enum mode */
	uint8_t actions[V__COUNT]; /* enum action, indexed by enum verdict */
};

struct rpolicies;

/*
 * Parse the text of one line (no comment, no surrounding blanks, as listfile_each gives it)
 * into *out, starting from base for the keys it does not give.  entry (DOMAIN_MAX + 2 bytes)
 * receives the normalised domain entry (lower-case A-label, a leading dot kept).  false with
 * a reason in why ("unknown key 'foo'", "dns_error=reject: ...") otherwise.
 */
bool rpolicy_parse(const char *text, size_t len, const struct rpolicy *base, struct rpolicy *out,
                   char *entry, char *why, size_t whylen);

/*
 * Read and validate the whole file at path; entries start from base.  NULL with err
 * ("PATH:LINE: message", "PATH: cannot open: ...") on failure.  An empty file gives an empty
 * table (not NULL).  A domain entry given twice is an error.  Free with rpolicies_free.
 */
struct rpolicies *rpolicies_load(const char *path, const struct rpolicy *base, char *err,
                                 size_t errlen);
void rpolicies_free(struct rpolicies *t); /* accepts NULL */

/* The entry that applies to a recipient domain (normalised, as addr_parse gives it), or
 * NULL when none covers it.  One hash probe for the name and one per parent. */
const struct rpolicy *rpolicies_lookup(const struct rpolicies *t, const char *domain);

/* The entry's domain as written in the file, normalised ("customer.example",
 * ".customer.example"); valid as long as the table. */
const char *rpolicies_name(const struct rpolicies *t, const struct rpolicy *p);

size_t rpolicies_count(const struct rpolicies *t); /* 0 for NULL */

#endif
