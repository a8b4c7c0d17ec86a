/*
 * text.h - text from the network or from a file made safe to show: in an SMTP reply, a
 * policy answer, an error message.  The one rule: printable ASCII stays, every other octet
 * (controls, DEL, non-ASCII) becomes '?', and text longer than the room is cut with "...".
 * (Log lines escape instead, to keep every octet: log.h.)
 */
#ifndef MXSANE_TEXT_H
#define MXSANE_TEXT_H

#include <stddef.h>

/* Copy s[0..n) into out (outlen bytes, at least 4), made printable and cut with "..." to
 * fit; always NUL-terminated.  Returns the length written. */
size_t text_printable(char *out, size_t outlen, const char *s, size_t n);

#endif
