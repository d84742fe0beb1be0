"""A mixed job of all four operations through real worker processes, PostgreSQL, Redis and the sandbox.

The audit must agree, item by item, with the sandbox's own record of what it deleted; no call may break
a batch limit or a rate limit.
"""

from __future__ import annotations

from collections import Counter, defaultdict

import pytest
from sqlalchemy import func, select

from models.tables import Item, VendorCall
from worker.sandbox import generate_media

pytestmark = pytest.mark.integration

DEFAULT_ONLY = {"aliyun": {"default": "LTAItest"}, "zego": {"default": "1234567890"}, "huawei": {"default": "proj01"}}
COUNTS = {"aliyun.DeleteStream": 400, "aliyun.DeleteMultipartUpload": 30, "zego.DeleteMedia": 2500, "huawei.DeleteAssets": 200}
PUBLISHED = {"zego.DeleteMedia": 20, "aliyun.DeleteStream": 50, "aliyun.DeleteMultipartUpload": 10, "huawei.DeleteAssets": 20}


def key_of(entry) -> tuple:
    return (f"{entry['vendor']}.{entry['operation']}", entry["group"] or "", entry["id"])


def item_key(item: Item) -> tuple:
    return (item.action, item.group_key if item.action != "aliyun.DeleteMultipartUpload" else "video", item.media_id)


@pytest.fixture(scope="module")
def workers(stack):
    stack.add_worker("w1")
    stack.add_worker("w2")
    return stack


def test_mixed_job_under_faults_ends_true_to_the_vendor(workers):
    stack = workers
    stack.sandbox.reset()
    seed, items = generate_media(
        COUNTS, missing_fraction=0.1, rng_seed=11, accounts=DEFAULT_ONLY, locked_fraction=0.02, processing_fraction=0.05, shuffle=True
    )
    # Huawei assets still "processing" refuse twice, then can be deleted; locked ZEGO files never can.
    for part in seed["huawei"].values():
        part["processing"] = {asset: 2 for asset in part.get("processing", [])}
    stack.sandbox.seed(seed)
    stack.sandbox.set_faults(
        {"*": {"unavailable": 0.08, "throttle": 0.03, "malformed": 0.02, "drop": 0.01,
               "apply_before_malformed": 0.5, "apply_before_drop": 0.5}},
        seed=5,
    )
    held = _held_keys(seed)
    locked = {("zego.DeleteMedia", cdn, f) for part in seed["zego"].values() for cdn, files in part.get("locked", {}).items() for f in files}

    submitted = stack.submit(items)
    summary = stack.wait(submitted.job_id, timeout=180)

    assert summary.status.value == "completed_with_failures"
    with stack.sessions() as session:
        audit = {item_key(i): i for i in session.scalars(select(Item).where(Item.job_id == submitted.job_id))}
    assert len(audit) == len(items) == sum(COUNTS.values())
    deletions = stack.sandbox.deleted()
    deleted_by_vendor = Counter(key_of(d) for d in deletions)
    calls = {c["request_id"]: c for c in stack.sandbox.calls()}

    # Nothing deleted twice, nothing deleted that was not submitted.
    assert max(deleted_by_vendor.values()) == 1
    assert set(deleted_by_vendor) <= set(audit)
    for key, item in audit.items():
        assert item.status != "pending", key
        if key in locked:
            # Refused on every attempt; the last answer (FailedOperation, or a fault) is the one recorded.
            assert item.status == "failed" and item.attempts == 8 and "gave up" in item.vendor_message, key
        elif key not in held:
            assert item.status == "already_gone", (key, item.status, item.vendor_code)
            assert key not in deleted_by_vendor
        elif item.status == "deleted":
            # The vendor deleted it, in the very call whose request id the audit kept.
            [entry] = [d for d in deletions if key_of(d) == key]
            assert entry["request_id"] == item.request_id, key
        else:
            # Held, yet recorded as already gone: only when the answer to the deleting call was lost.
            assert item.status == "already_gone", (key, item.status, item.vendor_code, item.vendor_message)
            [entry] = [d for d in deletions if key_of(d) == key]
            assert calls[entry["request_id"]]["fault"].split(":")[0] in ("drop", "malformed"), key
    assert {k for k, i in audit.items() if i.status in ("deleted", "already_gone") and k in held} == set(deleted_by_vendor)

    stats = stack.sandbox.stats()
    assert stats["batch_limit_violations"] == 0
    assert stats["auth_failures"] == 0
    assert stats["rate_limited"] == 0, ("the sandbox refused a call for going over a rate limit", stats["windows"])
    for window in stats["windows"]:
        action = f"{window['vendor']}.{window['operation']}"
        assert window["max_calls"] <= PUBLISHED[action], window
    assert sum(stats["faults"].values()) > 20  # the faults really happened

    # The audit of calls matches the sandbox's count of calls it answered.
    with stack.sessions() as session:
        audited_calls = session.scalar(select(func.count()).select_from(VendorCall).where(VendorCall.job_id == submitted.job_id))
    assert audited_calls == len(calls)


def test_running_the_same_items_again_deletes_nothing_twice(workers):
    stack = workers
    stack.sandbox.reset()
    seed, items = generate_media({"zego.DeleteMedia": 300, "aliyun.DeleteStream": 60, "huawei.DeleteAssets": 40}, accounts=DEFAULT_ONLY, rng_seed=3)
    stack.sandbox.seed(seed)
    first = stack.submit(items, idempotency_key="first-run")
    assert stack.wait(first.job_id).status.value == "completed"
    again = stack.submit(items, idempotency_key="first-run")
    assert (again.job_id, again.created) == (first.job_id, False)
    second = stack.submit(items, idempotency_key="second-run")
    summary = stack.wait(second.job_id)
    assert summary.status.value == "completed"
    assert summary.counts == {summary_status("already_gone"): len(items)}
    assert stack.sandbox.stats()["repeated_deletions"] == 0
    assert len(stack.sandbox.deleted()) == len(items)


def test_a_refused_account_is_halted_and_others_go_on(workers):
    stack = workers
    stack.sandbox.reset()
    good = [{"action": "zego.DeleteMedia", "Vendor": "Ws", "FileId": f"good{i}"} for i in range(150)]
    bad = [{"action": "zego.DeleteMedia", "Vendor": "Ws", "FileId": f"bad{i}", "account": "broken"} for i in range(250)]
    stack.sandbox.seed({"zego": {"1234567890": {"files": {"Ws": [i["FileId"] for i in good]}}, "222": {"files": {"Ws": [i["FileId"] for i in bad]}}}})
    submitted = stack.submit(good + bad)
    summary = stack.wait(submitted.job_id)
    assert summary.status.value == "completed_with_failures"
    with stack.sessions() as session:
        rows = session.execute(
            select(Item.account, Item.status, Item.vendor_code, func.count())
            .where(Item.job_id == submitted.job_id).group_by(Item.account, Item.status, Item.vendor_code)
        ).all()
    by_account = defaultdict(dict)
    for account, status, code, count in rows:
        by_account[account][(status, code)] = count
    assert by_account["default"] == {("deleted", None): 150}
    assert set(by_account["broken"]) <= {("failed", "7"), ("failed", "AccountHalted")}
    assert sum(by_account["broken"].values()) == 250
    # The refusal stopped the account: far fewer calls than its three batches would have made with retries.
    refused = [c for c in stack.sandbox.calls() if c["account"] == "222"]
    assert 1 <= len(refused) <= 3 and stack.sandbox.stats()["auth_failures"] == len(refused)


def summary_status(name):
    from worker.outcomes import ItemStatus

    return ItemStatus(name)


def _held_keys(seed) -> set[tuple]:
    held = set()
    for part in seed["aliyun"].values():
        for video, jobs in part.get("streams", {}).items():
            held |= {("aliyun.DeleteStream", video, j) for j in jobs}
        held |= {("aliyun.DeleteMultipartUpload", "video", m) for m in part.get("multipart_uploads", [])}
    for part in seed["zego"].values():
        for section in ("files", "locked"):
            for cdn, files in part.get(section, {}).items():
                held |= {("zego.DeleteMedia", cdn, f) for f in files}
    for part in seed["huawei"].values():
        held |= {("huawei.DeleteAssets", "", a) for a in part.get("assets", [])}
        held |= {("huawei.DeleteAssets", "", a) for a in part.get("processing", [])}
    return held
