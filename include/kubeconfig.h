/*
 * kubeconfig — where the Kubernetes API server is and how to authenticate
 * to it: from a kubeconfig file (its current context: server, CA file or
 * data, token, tokenFile or client certificate) or from the in-cluster
 * service account (KUBERNETES_SERVICE_HOST/PORT, the mounted token and CA).
 *
 * TLS verification is never turned off: insecure-skip-tls-verify, exec and
 * auth-provider plugins are refused with a clear error (sedns runs as a
 * node daemon with a service account; it needs none of them).
 *
 * A token file is named, not read, here: kube.c reads it before every
 * request, so a rotated (bound, expiring) token is picked up.
 *
 * Ownership: struct kube_conn owns its strings (kube_conn_free). Relative
 * paths in a kubeconfig are made absolute against its directory.
 */
#ifndef SEDNS_KUBECONFIG_H
#define SEDNS_KUBECONFIG_H

#include <stdbool.h>
#include <stddef.h>

struct kube_conn {
	char *server;              /* "https://host:port", no trailing '/' */
	char *ca_file;             /* PEM file, or NULL */
	char *ca_data;             /* PEM bytes (decoded), or NULL */
	size_t ca_len;
	char *token;               /* a fixed token, or NULL */
	char *token_file;          /* re-read per request, or NULL */
	char *cert_file, *key_file;    /* client certificate files, or NULL */
	char *cert_data, *key_data;    /* ... or their PEM bytes */
	size_t cert_len, key_len;
	char *source;              /* "in-cluster" or the kubeconfig path */
};

/* Reads path. false with "FILE:LINE:COL: message" (or "FILE: message") in
 * err. */
bool kubeconfig_load(const char *path, struct kube_conn *out, char *err, size_t errlen);
/* The service account of the pod: sa_dir/token, sa_dir/ca.crt and the
 * KUBERNETES_SERVICE_HOST / KUBERNETES_SERVICE_PORT environment. */
bool kubeconfig_in_cluster(const char *sa_dir, struct kube_conn *out, char *err, size_t errlen);
void kube_conn_free(struct kube_conn *c);

/* Standard base64 (whitespace skipped). Returns the decoded length, or
 * (size_t)-1 when in is not base64. out must hold len * 3 / 4 + 3 bytes. */
size_t kube_base64_decode(const char *in, size_t len, unsigned char *out);

#endif
