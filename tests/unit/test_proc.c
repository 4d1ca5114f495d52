/* SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <errno.h>

#include <lfipc/region.h>

#include "common/testhelp.h"

Test(proc, creator_is_one_participant)
{
	lfipc_region *r;
	lfipc_region_info info;

	cr_assert_eq(lfipc_region_create(NULL, 1 << 20, 0, &r), 0);
	cr_assert_eq(lfipc_region_stats(r, &info), 0);
	cr_assert_eq(info.participants, 1);
	lfipc_region_close(r);
}
