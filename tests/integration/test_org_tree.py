"""The directory staff tokens are checked against (shared.directory.covers), on the real database."""

from __future__ import annotations

import uuid

from shared.directory import covers, subtree
from shared.runtime import Runtime


async def test_staff_cover_their_organisation_and_everything_below_it_and_nothing_else(kernel: Runtime) -> None:
    county, township, village, hamlet, sibling, stranger = (uuid.uuid4() for _ in range(6))
    loop_a, loop_b = uuid.uuid4(), uuid.uuid4()
    edges = [
        (county, None),
        (township, county),
        (village, township),
        (hamlet, village),
        (sibling, county),
        (loop_a, loop_b),  # a cycle (a corrupt tree) must not hang the check
        (loop_b, loop_a),
    ]
    await kernel.pool.executemany(
        "INSERT INTO directory_orgs (org_id, parent_id, name, type, region_code, accepts_members)"
        " VALUES ($1, $2, 'union', 'county', '310115', true)",
        edges,
    )
    targets = (county, township, village, hamlet, sibling, stranger, loop_a)

    assert await covers(kernel.pool, county, targets) == [True, True, True, True, True, False, False]
    assert await covers(kernel.pool, township, targets) == [False, True, True, True, False, False, False]
    assert await covers(kernel.pool, hamlet, targets) == [False, False, False, True, False, False, False]
    assert await covers(kernel.pool, sibling, targets) == [False, False, False, False, True, False, False]
    assert await covers(kernel.pool, loop_b, (loop_a,)) == [True]
    # an organisation this service has not heard of yet is covered only by its own staff
    assert await covers(kernel.pool, stranger, (stranger,)) == [True]
    assert await covers(kernel.pool, county, (stranger,)) == [False]
    assert set(await subtree(kernel.pool, township)) == {township, village, hamlet}
    assert set(await subtree(kernel.pool, loop_a)) == {loop_a, loop_b}
