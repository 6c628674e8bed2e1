/* tcpframe — see include/tcpframe.h. */
#include "tcpframe.h"

#include <event2/buffer.h>

long
tcpframe_peek(struct evbuffer *in)
{
	uint8_t hdr[2];
	if (evbuffer_copyout(in, hdr, 2) < 2)
		return -1;
	size_t len = (size_t)hdr[0] << 8 | hdr[1];
	if (evbuffer_get_length(in) < len + 2)
		return -1;
	return (long)len;
}

bool
tcpframe_take(struct evbuffer *in, uint8_t *buf, size_t cap, size_t *len)
{
	long l = tcpframe_peek(in);
	if (l < 0)
		return false;
	evbuffer_drain(in, 2);
	if ((size_t)l > cap) {
		evbuffer_drain(in, (size_t)l);
		*len = 0;
		return true;
	}
	evbuffer_remove(in, buf, (size_t)l);
	*len = (size_t)l;
	return true;
}
