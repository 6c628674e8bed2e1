/*
 * kubeobj — what sedns keeps of a Kubernetes object, pure: the payload
 * functions the informers (kubeinf) store, and their readers.
 *
 * ServiceEntry: the object re-serialized as compact JSON (which is YAML)
 * with only apiVersion, kind, metadata.{name,namespace,labels,
 * creationTimestamp}, spec and status.addresses: the loader reads it with the
 * same parser, validation and last-good rules as a file. Dropping the rest
 * (managedFields, annotations, status.conditions) keeps memory down and
 * makes a change that sedns does not read no change.
 *
 * Pod: "NAMESPACE IP [IP...]" for a pod whose IPs map to its namespace, as
 * workloads.c does for files: not hostNetwork, not Succeeded or Failed, at
 * least one IP. NULL otherwise (the pod is absent from the store).
 *
 * Ownership: payloads are malloc'd, the caller's.
 */
#ifndef SEDNS_KUBEOBJ_H
#define SEDNS_KUBEOBJ_H

#include <stdbool.h>
#include <stddef.h>

#include "netaddr.h"

struct json_object;
struct workloads;

#define KUBEOBJ_MAX_POD_IPS 8

/* o[key] when o is an object that has it, else NULL (borrowed). */
struct json_object *kubeobj_get(struct json_object *o, const char *key);
/* o[key] when it is a string, else NULL (borrowed). */
const char *kubeobj_str(struct json_object *o, const char *key);

char *kubeobj_serviceentry_payload(struct json_object *obj);
char *kubeobj_pod_payload(struct json_object *obj);

/* Splits a pod payload: its namespace into ns, its IPs into ips (at most
 * KUBEOBJ_MAX_POD_IPS). Returns the number of IPs, 0 when malformed. */
size_t kubeobj_pod_parse(const char *payload, char *ns, size_t nslen, struct netaddr *ips);

/* False when the JSON text p[0, n) holds more objects and arrays (outside
 * strings) than n / bytes_per_container + floor: json-c spends ~800 bytes on
 * each, so "{},{},..." must be refused before it is parsed. */
bool kubeobj_json_budget_ok(const char *p, size_t n, size_t bytes_per_container, size_t floor);

#endif
