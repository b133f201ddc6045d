/*
 * manager_wire.c - the manager's versioned binary frame format: header parsing (bounded before
 * allocation), a bounds-checked body reader, output buffers, and the handshake MACs.
 * The format is described in manager_internal.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "manager_internal.h"

uint32_t mproc__mw_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint64_t mproc__mw_u64(const uint8_t *p)
{
	return (uint64_t)mproc__mw_u32(p) | (uint64_t)mproc__mw_u32(p + 4) << 32;
}

void mproc__mw_put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

void mproc__mw_put_u64(uint8_t *p, uint64_t v)
{
	mproc__mw_put_u32(p, (uint32_t)v);
	mproc__mw_put_u32(p + 4, (uint32_t)(v >> 32));
}

static bool op_known(uint8_t op)
{
	return (op >= MPROC__MW_CHALLENGE && op <= MPROC__MW_FAILURE) ||
	       (op >= MPROC__MW_OPEN && op <= MPROC__MW_OP_LAST) || op == MPROC__MW_REPLY;
}

int mproc__mw_hdr_parse(const uint8_t *p, uint64_t limit, struct mproc__mw_hdr *h)
{
	uint64_t len = mproc__mw_u64(p);

	if (p[8] != MPROC__MW_VERSION || p[10] != 0 || p[11] != 0 || !op_known(p[9]))
		return -EBADMSG;
	/* limit is the whole frame; compare without overflow (len may be 2^64 - 1). */
	if (limit < MPROC__MW_HDR || len > limit - MPROC__MW_HDR)
		return -EMSGSIZE;
	h->len = len;
	h->op = p[9];
	return 0;
}

void mproc__mw_hdr_put(uint8_t *p, uint64_t len, uint8_t op)
{
	mproc__mw_put_u64(p, len);
	p[8] = MPROC__MW_VERSION;
	p[9] = op;
	p[10] = 0;
	p[11] = 0;
}

bool mproc__mw_get_bytes(struct mproc__mw_rd *r, size_t n, const uint8_t **v)
{
	if (n > r->len - r->off)
		return false;
	*v = r->p + r->off;
	r->off += n;
	return true;
}

bool mproc__mw_get_u8(struct mproc__mw_rd *r, uint8_t *v)
{
	const uint8_t *p;

	if (!mproc__mw_get_bytes(r, 1, &p))
		return false;
	*v = *p;
	return true;
}

bool mproc__mw_get_u32(struct mproc__mw_rd *r, uint32_t *v)
{
	const uint8_t *p;

	if (!mproc__mw_get_bytes(r, 4, &p))
		return false;
	*v = mproc__mw_u32(p);
	return true;
}

bool mproc__mw_get_u64(struct mproc__mw_rd *r, uint64_t *v)
{
	const uint8_t *p;

	if (!mproc__mw_get_bytes(r, 8, &p))
		return false;
	*v = mproc__mw_u64(p);
	return true;
}

bool mproc__mw_get_i64(struct mproc__mw_rd *r, int64_t *v)
{
	uint64_t u;

	if (!mproc__mw_get_u64(r, &u))
		return false;
	memcpy(v, &u, sizeof(*v));
	return true;
}

bool mproc__mw_get_str(struct mproc__mw_rd *r, const uint8_t **v, uint32_t *n)
{
	if (!mproc__mw_get_u32(r, n) || *n == 0 || *n > MPROC_MANAGER_NAME_MAX)
		return false;
	if (!mproc__mw_get_bytes(r, *n, v))
		return false;
	return memchr(*v, 0, *n) == NULL;
}

void mproc__mw_get_rest(struct mproc__mw_rd *r, const uint8_t **v, size_t *n)
{
	*v = r->p + r->off;
	*n = r->len - r->off;
	r->off = r->len;
}

bool mproc__mw_done(const struct mproc__mw_rd *r)
{
	return r->off == r->len;
}

int mproc__mw_reserve(struct mproc__mw_buf *b, size_t more)
{
	size_t cap;
	uint8_t *p;

	/* Never moves the bytes (b->off stays): a reply in progress keeps its offset into the
	 * buffer. The writer reclaims written bytes itself (mproc__mw_compact). */
	if (more <= b->cap - b->len)
		return 0;
	if (more > SIZE_MAX / 2 - b->len)
		return -ENOMEM;
	cap = b->cap ? b->cap : 256;
	while (cap < b->len + more)
		cap *= 2;
	p = realloc(b->p, cap);
	if (!p)
		return -ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

int mproc__mw_put(struct mproc__mw_buf *b, const void *v, size_t n)
{
	int r = mproc__mw_reserve(b, n);

	if (r < 0)
		return r;
	if (n)
		memcpy(b->p + b->len, v, n);
	b->len += n;
	return 0;
}

void mproc__mw_compact(struct mproc__mw_buf *b)
{
	if (!b->off)
		return;
	memmove(b->p, b->p + b->off, b->len - b->off);
	b->len -= b->off;
	b->off = 0;
}

void mproc__mw_buf_free(struct mproc__mw_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

static const char mac_client_tag[] = "mproc-manager-1 client";
static const char mac_server_tag[] = "mproc-manager-1 server";

void mproc__mw_mac_client(const void *key, size_t keylen, const uint8_t ns[MPROC__MW_NONCE],
			  uint8_t out[MPROC__SHA256_LEN])
{
	struct mproc__iov parts[] = {
		{ mac_client_tag, sizeof(mac_client_tag) - 1 },
		{ ns, MPROC__MW_NONCE },
	};

	mproc__hmac_sha256(key, keylen, parts, MPROC__ARRAY_SIZE(parts), out);
}

void mproc__mw_mac_server(const void *key, size_t keylen, const uint8_t nc[MPROC__MW_NONCE],
			  const uint8_t ns[MPROC__MW_NONCE], uint8_t out[MPROC__SHA256_LEN])
{
	struct mproc__iov parts[] = {
		{ mac_server_tag, sizeof(mac_server_tag) - 1 },
		{ nc, MPROC__MW_NONCE },
		{ ns, MPROC__MW_NONCE },
	};

	mproc__hmac_sha256(key, keylen, parts, MPROC__ARRAY_SIZE(parts), out);
}

int mproc__random(void *buf, size_t n)
{
	uint8_t *p = buf;
	ssize_t got;

	while (n) {
		got = getrandom(p, n, 0);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += got;
		n -= (size_t)got;
	}
	return 0;
}
