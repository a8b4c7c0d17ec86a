/*
 * listfile.h - plain text list files (skip.domains_file, skip.clients_file,
 * policy.allow_clients_file): one entry per line, '#' starts a comment, blank lines and the
 * blanks around an entry are ignored.
 *
 * Every error names the file and, for an entry, the line: "PATH:LINE: invalid domain name
 * 'a..b' (empty label)"; "PATH: cannot open: No such file or directory".  A file is read
 * completely into the list given; on failure the list holds part of it and the caller throws
 * it away (a configuration is validated completely before it is used).  No global state:
 * safe from any thread on lists of its own.
 */
#ifndef MXSANE_LISTFILE_H
#define MXSANE_LISTFILE_H

#include <stdbool.h>
#include <stddef.h>

#include "addr.h"
#include "netlist.h"

/* Bound on a line, enforced while reading (an entry is at most 254 octets; the rest leaves
 * room for the settings a line of a future table may carry). */
#define LISTFILE_LINE_MAX 4096

/*
 * Call fn for every entry line of the file at path: the text without comment and surrounding
 * blanks, NUL-terminated, never empty.  fn returns false with a reason in why (the file and
 * line are added).  A NUL byte, a line longer than LISTFILE_LINE_MAX, a file that cannot be
 * opened or read, or is not a regular file (a directory, a FIFO, a device) are errors.  true when
 * every line passed.
 */
typedef bool (*listfile_fn)(void *arg, char *text, size_t len, char *why, size_t whylen);
bool listfile_each(const char *path, listfile_fn fn, void *arg, char *err, size_t errlen);

/* One domain entry as in skip.domains: "example.com" or ".example.com" (its subdomains), UTF-8
 * allowed.  Writes the normalised entry (lower-case A-label, the leading dot kept) to norm,
 * which holds DOMAIN_MAX + 2 bytes.  false with a reason ("empty label") otherwise. */
bool listfile_domain_entry(const char *text, size_t len, char *norm, char *why, size_t whylen);

/* Add every entry of a domain file / a network file (addresses and CIDR networks) to l.  The
 * caller indexes a network list once it is complete (netlist_index). */
bool listfile_load_domains(const char *path, struct domlist *l, char *err, size_t errlen);
bool listfile_load_networks(const char *path, struct netlist *l, char *err, size_t errlen);

#endif
