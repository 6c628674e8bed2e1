/* libFuzzer: ServiceEntry YAML through the loader, the registry (with the
 * tenancy policy) and the name table. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "nametable.h"
#include "registry.h"
#include "serviceentry.h"
#include "tenancy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct tenancy *t;
	if (t == NULL)
		t = tenancy_new("cluster.local");
	struct se_set set;
	se_set_init(&set);
	se_load_buffer(&set, "fuzz.yaml", (const char *)data, size);
	struct se_set copy;
	se_set_init(&copy);
	for (size_t i = 0; i < set.nentries; i++)
		se_set_copy_entry(&copy, set.entries[i]);
	se_set_free(&copy);
	struct registry *reg = registry_build(&set, t);
	if (reg == NULL) {
		se_set_free(&set);
		return 0;
	}
	struct nametable *nt = nametable_build(reg, "cluster.local", NULL, 0, NULL);
	if (nt == NULL) {
		registry_free(reg);
		return 0;
	}
	struct nt_result r;
	for (size_t i = 0; i < reg->nhosts && i < 8; i++) {
		char q[300];
		nametable_lookup(nt, reg->hosts[i].name, &r);
		snprintf(q, sizeof(q), "%s.ns.svc.cluster.local", reg->hosts[i].name);
		nametable_lookup(nt, q, &r);
	}
	nametable_free(nt);
	return 0;
}
