/* libFuzzer: API server JSON (a LIST page, a WATCH event, or an object)
 * through the informer core and the object payloads, then the payloads
 * through their readers and the ServiceEntry loader, as the daemon does. */
#include <json-c/json.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kubeinf.h"
#include "kubeobj.h"
#include "serviceentry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_tokener *tok = json_tokener_new();
	if (tok == NULL)
		return 0;
	struct json_object *o = json_tokener_parse_ex(tok, (const char *)data, (int)(size > 65536 ? 65536 : size));
	json_tokener_free(tok);
	if (o == NULL)
		return 0;
	char *se = kubeobj_serviceentry_payload(o);
	char *pod = kubeobj_pod_payload(o);
	if (se) {
		struct se_set set;
		se_set_init(&set);
		se_load_buffer(&set, "kubernetes:fuzz", se, strlen(se));
		se_set_free(&set);
	}
	char ns[256];
	struct netaddr ips[KUBEOBJ_MAX_POD_IPS];
	if (pod)
		kubeobj_pod_parse(pod, ns, sizeof(ns), ips);
	free(se);
	free(pod);
	/* the same bytes as a list page, then as a watch event */
	struct kinf *k = kinf_new(kubeobj_serviceentry_payload, 100, 1000, 1000);
	if (k) {
		bool changed = false;
		char err[256];
		kinf_list_page(k, o, 1.0, &changed, err, sizeof(err));
		kinf_ended(k, KINF_LIST, 200, true, 1.0, 0.5);
		kinf_watch_open(k, 2.0);
		kinf_watch_event(k, o, 2.0, &changed, err, sizeof(err));
		struct kinf_doc *docs;
		size_t n;
		if (kinf_snapshot(k, &docs, &n))
			kinf_docs_free(docs, n);
		kinf_free(k);
	}
	json_object_put(o);
	return 0;
}
