/*
 * fuzz_config.c - the configuration loader on arbitrary file contents: it must either load
 * a configuration or return an error message naming the file, never crash or leak.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[] = "/tmp/mxsane-fuzz-config-XXXXXX";
	char err[1024];
	int fd = mkstemp(path);
	if (fd < 0)
		return 0;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		unlink(path);
		return 0;
	}
	close(fd);
	err[0] = '\0';
	struct config *c = config_load(path, err, sizeof(err));
	if (!c && strncmp(err, path, strlen(path)) != 0)
		abort(); /* every error names the file */
	config_unref(c);
	unlink(path);
	return 0;
}
