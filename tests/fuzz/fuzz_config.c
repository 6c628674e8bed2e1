/* libFuzzer: the config loader on any file content, with the round-trip
 * oracle: what loads prints as YAML that loads again and prints the same. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct config *
load_text(const char *path, const void *text, size_t len)
{
	FILE *f = fopen(path, "w");
	if (f == NULL)
		return NULL;
	fwrite(text, 1, len, f);
	fclose(f);
	char *argv[] = { (char *)"-c", (char *)path };
	FILE *null = fopen("/dev/null", "w");
	struct config *c = config_load(2, argv, null ? null : stderr, NULL, NULL, NULL);
	if (null)
		fclose(null);
	return c;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[64];
	if (path[0] == '\0') {
		snprintf(path, sizeof(path), "/tmp/sedns-fuzz-config-%ld.yaml", (long)getpid());
		log_set_level(LOG_LVL_ERROR);
	}
	struct config *c = load_text(path, data, size);
	if (c == NULL)
		return 0;
	char *p1 = NULL, *p2 = NULL;
	size_t l1 = 0, l2 = 0;
	FILE *f = open_memstream(&p1, &l1);
	config_print(c, f);
	fclose(f);
	config_free(c);
	c = load_text(path, p1, l1);
	if (c == NULL) {
		fprintf(stderr, "round trip: printed config does not load:\n%s\n", p1);
		abort();
	}
	f = open_memstream(&p2, &l2);
	config_print(c, f);
	fclose(f);
	config_free(c);
	if (strcmp(strchr(p1, '\n'), strchr(p2, '\n')) != 0) {
		fprintf(stderr, "round trip: differs:\n%s\n---\n%s\n", p1, p2);
		abort();
	}
	free(p1);
	free(p2);
	return 0;
}
