import uuid

from core.ids import uuid7, uuid7_strings


def test_uuid7_is_version_7_and_time_ordered_across_milliseconds():
    import time

    first = uuid7()
    time.sleep(0.002)
    second = uuid7()
    assert first.version == 7 and first.variant == uuid.RFC_4122
    assert first < second


def test_uuid7_strings_are_distinct_valid_version_7_uuids():
    ids = [uuid.UUID(value) for value in uuid7_strings(1000)]
    assert len(set(ids)) == 1000
    assert {u.version for u in ids} == {7}
    assert {u.variant for u in ids} == {uuid.RFC_4122}
