/*
 * arena.h - a bump allocator for the strings and arrays of one result: everything is freed
 * at once with arena_free().  Allocation failures return NULL (or "" for the string
 * helpers, so a result is always printable).  Not thread-safe; one arena per result.
 */
#ifndef MXSANE_ARENA_H
#define MXSANE_ARENA_H

#include <stdarg.h>
#include <stddef.h>

struct arena_block;
struct arena {
	struct arena_block *head;
	unsigned char *buf; /* optional first buffer of the caller's (arena_init) */
	size_t buf_used, buf_size;
};

/* Use buf (16-byte aligned, size bytes, owned by the caller and kept until arena_free) before
 * any heap block: a result that fits costs no malloc.  A zeroed struct arena needs no init. */
void arena_init(struct arena *a, void *buf, size_t size);

void *arena_alloc(struct arena *a, size_t n); /* zeroed, 16-byte aligned; NULL on OOM */
const char *arena_strdup(struct arena *a, const char *s);
const char *arena_printf(struct arena *a, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
/* The strings up to a NULL, joined (no format: the hot paths build their texts with it). */
const char *arena_concat(struct arena *a, ...) __attribute__((sentinel));
void arena_free(struct arena *a); /* leaves the arena empty and reusable */

#endif
