/* Unit tests for bigmem (large zeroed blocks, huge-page mappings). */
#include <criterion/criterion.h>

#include <stdint.h>
#include <string.h>

#include "bigmem.h"

static void
check_block(size_t n)
{
	unsigned char *p = bigmem_alloc(n);
	cr_assert_not_null(p, "size %zu", n);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(p[i], 0, "size %zu: byte %zu not zero", n, i);
	memset(p, 0xa5, n);
	bigmem_free(p, n);
}

Test(bigmem, small_and_large_blocks_are_zeroed_and_writable)
{
	check_block(0);
	check_block(1);
	check_block(BIGMEM_MIN - 1);
	check_block(BIGMEM_MIN);
	check_block(BIGMEM_MIN + 1);
	check_block((2u << 20) + 4096);
	check_block(5u << 20);
}

Test(bigmem, large_blocks_are_huge_page_aligned)
{
	void *p = bigmem_alloc(3u << 20);
	cr_assert_not_null(p);
	cr_assert_eq((uintptr_t)p % (2u << 20), 0);
	bigmem_free(p, 3u << 20);
}

Test(bigmem, fresh_blocks_after_free_are_zeroed_again)
{
	for (int r = 0; r < 3; r++) {
		size_t n = (size_t)BIGMEM_MIN * (size_t)(r + 1) + 123;
		unsigned char *p = bigmem_alloc(n);
		cr_assert_not_null(p);
		cr_assert_eq(p[0], 0);
		cr_assert_eq(p[n - 1], 0);
		memset(p, 0xff, n);
		bigmem_free(p, n);
	}
	bigmem_free(NULL, 5u << 20);
}

Test(bigmem, absurd_size_fails_cleanly)
{
	cr_assert_null(bigmem_alloc(SIZE_MAX - 4096));
}

Test(bigmem, grow_keeps_the_bytes_and_zeroes_the_rest)
{
	/* from calloc to a mapping, within a mapping, across mappings */
	size_t sizes[] = { 0, 100, BIGMEM_MIN - 1, BIGMEM_MIN + 10, (2u << 20) - 1, 2u << 20, (5u << 20) + 3 };
	unsigned char *p = NULL;
	size_t n = 0;
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		size_t m = sizes[k];
		unsigned char *q = bigmem_grow(p, n, m);
		cr_assert_not_null(q, "grow %zu -> %zu", n, m);
		for (size_t i = 0; i < n; i++)
			cr_assert_eq(q[i], (unsigned char)(i * 7 + 1), "grow %zu -> %zu: byte %zu lost", n, m, i);
		for (size_t i = n; i < m; i++)
			cr_assert_eq(q[i], 0, "grow %zu -> %zu: byte %zu not zero", n, m, i);
		for (size_t i = 0; i < m; i++)
			q[i] = (unsigned char)(i * 7 + 1);
		p = q;
		n = m;
	}
	bigmem_free(p, n);
	cr_assert_null(bigmem_grow(NULL, 0, SIZE_MAX - 4096));
}
