/* kubeobj — see include/kubeobj.h. */
#include "kubeobj.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct json_object *
kubeobj_get(struct json_object *o, const char *key)
{
	struct json_object *v;
	if (o == NULL || !json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, key, &v))
		return NULL;
	return v;
}

const char *
kubeobj_str(struct json_object *o, const char *key)
{
	struct json_object *v = kubeobj_get(o, key);
	return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

/* Adds o[key] (a new reference) to dst when present. */
static void
copy_key(struct json_object *dst, struct json_object *o, const char *key)
{
	struct json_object *v = kubeobj_get(o, key);
	if (v != NULL)
		json_object_object_add(dst, key, json_object_get(v));
}

char *
kubeobj_serviceentry_payload(struct json_object *obj)
{
	if (obj == NULL || !json_object_is_type(obj, json_type_object))
		return NULL;
	struct json_object *out = json_object_new_object(), *md = json_object_new_object();
	if (out == NULL || md == NULL) {
		json_object_put(out);
		json_object_put(md);
		return NULL;
	}
	/* items of a LIST may omit apiVersion and kind: they are implied */
	if (kubeobj_get(obj, "apiVersion"))
		copy_key(out, obj, "apiVersion");
	else
		json_object_object_add(out, "apiVersion", json_object_new_string("networking.istio.io/v1"));
	if (kubeobj_get(obj, "kind"))
		copy_key(out, obj, "kind");
	else
		json_object_object_add(out, "kind", json_object_new_string("ServiceEntry"));
	struct json_object *omd = kubeobj_get(obj, "metadata");
	copy_key(md, omd, "name");
	copy_key(md, omd, "namespace");
	copy_key(md, omd, "labels");
	copy_key(md, omd, "creationTimestamp");
	json_object_object_add(out, "metadata", md);
	copy_key(out, obj, "spec");
	struct json_object *addrs = kubeobj_get(kubeobj_get(obj, "status"), "addresses");
	if (addrs != NULL) {
		struct json_object *st = json_object_new_object();
		if (st != NULL) {
			json_object_object_add(st, "addresses", json_object_get(addrs));
			json_object_object_add(out, "status", st);
		}
	}
	/* compact: never longer than the object the API server sent (indented,
	 * nested arrays grew 31 times); no "\/" (JSON allows it, YAML 1.1 does
	 * not) */
	const char *s = json_object_to_json_string_ext(out, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	char *r = s ? strdup(s) : NULL;
	json_object_put(out);
	return r;
}

/* A namespace name is an RFC 1123 label: 1 to 63 of [a-z0-9-], alphanumeric
 * at both ends. Anything else is refused whole, never truncated (a cut name
 * could be another namespace). */
static bool
dns_label(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}

char *
kubeobj_pod_payload(struct json_object *obj)
{
	const char *ns = kubeobj_str(kubeobj_get(obj, "metadata"), "namespace");
	struct json_object *spec = kubeobj_get(obj, "spec"), *status = kubeobj_get(obj, "status");
	struct json_object *hn = kubeobj_get(spec, "hostNetwork");
	const char *phase = kubeobj_str(status, "phase");
	if (ns == NULL || !dns_label(ns))
		return NULL;
	/* a hostNetwork pod's IP is the node's, shared by many; only a JSON
	 * true says so (json-c's get_boolean takes the string "false" as true) */
	if (hn && json_object_is_type(hn, json_type_boolean) && json_object_get_boolean(hn))
		return NULL;
	/* a finished pod's IP may already be someone else's */
	if (phase && (strcmp(phase, "Succeeded") == 0 || strcmp(phase, "Failed") == 0))
		return NULL;
	char buf[128 + KUBEOBJ_MAX_POD_IPS * (NETADDR_STRLEN + 1)];
	int n = snprintf(buf, sizeof(buf), "%s", ns);
	size_t len = (size_t)n, nips = 0;
	struct netaddr seen[KUBEOBJ_MAX_POD_IPS];
	struct json_object *ips = kubeobj_get(status, "podIPs");
	size_t total = ips && json_object_is_type(ips, json_type_array) ? json_object_array_length(ips) : 0;
	for (size_t i = 0; i <= total && nips < KUBEOBJ_MAX_POD_IPS; i++) {
		/* podIPs, then podIP (older API servers set only that) */
		const char *ip = i < total ? kubeobj_str(json_object_array_get_idx(ips, i), "ip") : kubeobj_str(status, "podIP");
		struct netaddr a;
		if (ip == NULL || !netaddr_parse(ip, &a))
			continue;
		bool dup = false;
		for (size_t j = 0; j < nips; j++)
			dup |= netaddr_equal(&seen[j], &a);
		if (dup)
			continue;
		seen[nips++] = a;
		char t[NETADDR_STRLEN];
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, " %s", netaddr_fmt(&a, t, sizeof(t)));
	}
	return nips ? strdup(buf) : NULL;
}

size_t
kubeobj_pod_parse(const char *payload, char *ns, size_t nslen, struct netaddr *ips)
{
	const char *sp = strchr(payload, ' ');
	if (sp == NULL || (size_t)(sp - payload) >= nslen || sp == payload)
		return 0;
	memcpy(ns, payload, (size_t)(sp - payload));
	ns[sp - payload] = '\0';
	size_t n = 0;
	for (const char *p = sp; *p == ' ' && n < KUBEOBJ_MAX_POD_IPS;) {
		p++;
		const char *e = strchr(p, ' ');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		char t[NETADDR_STRLEN + 1];
		if (l == 0 || l >= sizeof(t))
			return 0;
		memcpy(t, p, l);
		t[l] = '\0';
		if (!netaddr_parse(t, &ips[n]))
			return 0;
		n++;
		p += l;
	}
	return n;
}

bool
kubeobj_json_budget_ok(const char *p, size_t n, size_t bytes_per_container, size_t floor)
{
	size_t containers = 0, max = n / bytes_per_container + floor;
	bool in_str = false;
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (in_str) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = false;
		} else if (c == '"') {
			in_str = true;
		} else if ((c == '{' || c == '[') && ++containers > max) {
			return false;
		}
	}
	return true;
}
