/*
 * domtab.h - tables of domain entries, each with a value, looked up by the most specific
 * entry that covers a name.
 *
 * An entry is "example.com" (that name only) or ".example.com" (every name strictly below
 * example.com, not example.com itself).  Entries are lower-case A-labels without trailing
 * dot (domain_normalize in addr.h), at most 254 octets with the dot.  A lookup costs one hash
 * probe for the name itself and one per label boundary (a name has at most 127 labels), not a
 * scan: it does not grow with the table.
 *
 * A table is built by one thread (configuration load) and then only read, so lookups are
 * safe from any number of threads.  Used for skip.domains and reusable for any "domain ->
 * setting" table: the value is an opaque 32-bit number (an index into the caller's array).
 */
#ifndef MXSANE_DOMTAB_H
#define MXSANE_DOMTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bound on the entries of one table, enforced by domtab_add (a file of 16 million lines is
 * a mistake, not a list of exceptions). */
#define DOMTAB_MAX_ENTRIES (16u * 1024 * 1024)

struct domtab;

/* An empty table; NULL on out of memory.  Free with domtab_free (accepts NULL). */
struct domtab *domtab_new(void);
void domtab_free(struct domtab *t);

enum domtab_status {
	DOMTAB_ADDED = 0, /* a new entry */
	DOMTAB_EXISTS,    /* the same entry was there already: its value is kept, *old has it */
	DOMTAB_INVALID,   /* empty, longer than 254 octets, or "." alone */
	DOMTAB_FULL,      /* DOMTAB_MAX_ENTRIES reached */
	DOMTAB_NOMEM,
};

/* Add an entry (copied) with its value.  old may be NULL. */
enum domtab_status domtab_add(struct domtab *t, const char *entry, uint32_t value, uint32_t *old);

/*
 * The most specific entry covering domain: the exact entry for the name wins, then the
 * suffix entry of the nearest parent (".b.example" before ".example").  true and *value
 * (may be NULL) when one covers it.  The name is compared without regard to ASCII case; a
 * name longer than 254 octets matches nothing.
 */
bool domtab_lookup(const struct domtab *t, const char *domain, uint32_t *value);

size_t domtab_count(const struct domtab *t); /* entries; 0 for NULL */
size_t domtab_bytes(const struct domtab *t); /* memory held, for diagnostics */

/*
 * A set of domains for skip.domains: a domtab whose values are unused.  Zero-initialised it
 * is empty; domlist_add creates the table on first use.
 */
struct domlist {
	struct domtab *t;
};
/* false on an invalid entry or out of memory; adding an entry twice is not an error. */
bool domlist_add(struct domlist *l, const char *normalized_entry);
bool domlist_match(const struct domlist *l, const char *domain);
size_t domlist_count(const struct domlist *l);
void domlist_free(struct domlist *l); /* leaves it empty; accepts NULL */

#endif
