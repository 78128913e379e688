/* Allocation wrappers: allocation failure is not recoverable here, so these log and abort
 * (sizes are bounded by explicit limits instead). Free with free(). */
#ifndef GW_CORE_ALLOC_H
#define GW_CORE_ALLOC_H

#include <stddef.h>

void *gw_malloc(size_t n);
void *gw_calloc(size_t count, size_t size);
void *gw_realloc(void *p, size_t n);
/* Returns a NUL-terminated copy of the n bytes at s; caller frees. */
char *gw_strndup(const char *s, size_t n);
char *gw_strdup(const char *s);

#endif
