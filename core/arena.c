/*
 * arena.c - bump allocator: the caller's first buffer, then blocks of at least 4 KiB, freed
 * together.
 */
#include "arena.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct arena_block {
	struct arena_block *next;
	size_t used, size;
	_Alignas(16) unsigned char data[];
};

/* Room for n bytes, not cleared (the text functions below fill every byte they use). */
void arena_init(struct arena *a, void *buf, size_t size)
{
	a->head = NULL;
	a->buf = buf;
	a->buf_used = 0;
	a->buf_size = size & ~(size_t)15;
}

static void *arena_alloc_raw(struct arena *a, size_t n)
{
	n = (n + 15) & ~(size_t)15;
	if (a->buf && a->buf_size - a->buf_used >= n) {
		void *p = a->buf + a->buf_used;
		a->buf_used += n;
		return p;
	}
	struct arena_block *b = a->head;
	if (!b || b->size - b->used < n) {
		size_t sz = n > 4096 ? n : 4096;
		b = malloc(sizeof(*b) + sz);
		if (!b)
			return NULL;
		b->size = sz;
		b->used = 0;
		b->next = a->head;
		a->head = b;
	}
	void *p = b->data + b->used;
	b->used += n;
	return p;
}

void *arena_alloc(struct arena *a, size_t n)
{
	void *p = arena_alloc_raw(a, n);
	if (p)
		memset(p, 0, n);
	return p;
}

const char *arena_strdup(struct arena *a, const char *s)
{
	size_t l = strlen(s) + 1;
	char *p = arena_alloc_raw(a, l);
	if (!p)
		return "";
	memcpy(p, s, l);
	return p;
}

const char *arena_printf(struct arena *a, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return "";
	char *p = arena_alloc_raw(a, (size_t)n + 1);
	if (!p)
		return "";
	va_start(ap, fmt);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return p;
}

const char *arena_concat(struct arena *a, ...)
{
	enum { KEEP = 8 }; /* lengths remembered for the copy; more are measured again */
	size_t lens[KEEP];
	va_list ap;
	size_t n = 0, k = 0;
	va_start(ap, a);
	for (const char *s = va_arg(ap, const char *); s; s = va_arg(ap, const char *), k++) {
		size_t l = strlen(s);
		if (k < KEEP)
			lens[k] = l;
		n += l;
	}
	va_end(ap);
	char *p = arena_alloc_raw(a, n + 1);
	if (!p)
		return "";
	char *o = p;
	k = 0;
	va_start(ap, a);
	for (const char *s = va_arg(ap, const char *); s; s = va_arg(ap, const char *), k++) {
		size_t l = k < KEEP ? lens[k] : strlen(s);
		memcpy(o, s, l);
		o += l;
	}
	va_end(ap);
	*o = '\0';
	return p;
}

void arena_free(struct arena *a)
{
	struct arena_block *b = a->head, *next;
	for (; b; b = next) {
		next = b->next;
		free(b);
	}
	a->head = NULL;
	a->buf_used = 0;
}
