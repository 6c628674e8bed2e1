/* libFuzzer: pod list YAML through the workloads loader. */
#include <stdint.h>
#include <stdio.h>

#include "workloads.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t np = 0, ne = 0;
	FILE *null = fopen("/dev/null", "w");
	struct workloads *w = workloads_load_buffer("pods.yaml", (const char *)data, size, null, &np, &ne);
	if (w) {
		struct netaddr a;
		netaddr_parse("10.0.0.1", &a);
		workloads_namespace(w, &a);
	}
	workloads_free(w);
	if (null)
		fclose(null);
	return 0;
}
