/*
 * text.h - text from the network or from a file made safe to show: in an SMTP reply, a
 * policy answer, a header, an error message.  The one rule: printable ASCII stays, every
 * other octet (controls, DEL, non-ASCII) becomes '?', and text longer than the room is cut
 * with "...".  (Log lines escape instead, to keep every octet: log.h.)
 */
#ifndef MXSANE_TEXT_H
#define MXSANE_TEXT_H

#include <stddef.h>

/* Double every '%': libmilter's smfi_setreply reads the text as a format. */
#define TEXT_PERCENT 0x1u

/* An address in a reply shows at most this many octets of what the client sent. */
#define TEXT_ADDRESS_MAX 300

/* Copy s[0..n) into out (outlen bytes), made printable and cut with "..." to fit (a "%%"
 * pair is never split); always NUL-terminated.  Returns the length written. */
size_t text_printable(char *out, size_t outlen, const char *s, size_t n, unsigned flags);

/* An address as a reply shows it: blanks around it and one pair of angle brackets removed,
 * then at most TEXT_ADDRESS_MAX octets, printable ("..." when cut). */
size_t text_address(char *out, size_t outlen, const char *s, size_t n);

#endif
