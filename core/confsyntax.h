/*
 * confsyntax.h - the syntax check of a configuration file, before libconfig sees it.
 *
 * libconfig 1.5 is not fit to see a malformed or hostile file by itself: it reads integer
 * literals with atoi() (4294967396 becomes 100 without an error), leaks a string when a syntax
 * error follows it, would follow @include to a file nobody validated, and stops silently at a
 * NUL byte.  So the text is first tokenised and parsed here, mirroring libconfig 1.5's scanner
 * and grammar; only a file that passes is handed to libconfig.
 */
#ifndef MXSANE_CONFSYNTAX_H
#define MXSANE_CONFSYNTAX_H

#include <stdbool.h>
#include <stddef.h>

/* True if text[0..len) is a file libconfig may read; otherwise false with the line of the
 * error and a message ("syntax error: unexpected '}'") in err. */
bool confsyntax_check(const char *text, size_t len, unsigned *line, char *err, size_t errlen);

#endif
