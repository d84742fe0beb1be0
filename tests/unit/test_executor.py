"""The batch executor against SQLite and httpx.MockTransport: splitting, retries, halts, leases."""

from __future__ import annotations

import time

from urllib.parse import parse_qs, urlsplit

import httpx
from sqlalchemy import func, select

from models import Batch, Item, VendorCall
from tests.unit.executor_env import SETTINGS, items_by_media, job_status, start_job
from worker.executor import run_batch
from worker.outcomes import JobStatus
from worker.refs import BatchRef
from worker.retry import Finished, Permit, RunAgain, Skipped


def stream_answer(gone: set[str], request_id="req"):
    def handler(request):
        job_ids = parse_qs(urlsplit(str(request.url)).query)["JobIds"][0].split(",")
        if gone & set(job_ids):
            return httpx.Response(404, json={"RequestId": request_id, "Code": "InvalidStream.NotFound", "Message": "The stream does not exist."})
        return httpx.Response(200, json={"RequestId": f"{request_id}-{len(job_ids)}-{job_ids[0]}"})

    return handler


def test_unnamed_culprit_is_found_by_splitting_and_the_rest_deleted(env):
    rt, handlers, calls = env
    job_id, [batch_id] = start_job(rt, [{"action": "aliyun.DeleteStream", "VideoId": "v", "JobId": f"j{i:02}"} for i in range(20)])
    handlers.append(stream_answer({"j13"}))
    assert run_batch(rt, batch_id) == Finished(job_id, None)  # its split-off halves are still open
    # Each split hands its second half over as a new batch, which is run in turn; the last one closes the job.
    ran, decisions = [batch_id], []
    while rt.dispatch.__self__:
        ran.append(rt.dispatch.__self__.pop(0))
        decisions.append(run_batch(rt, ran[-1]))
    assert decisions[:-1] == [Finished(job_id, None)] * (len(decisions) - 1)
    assert decisions[-1] == Finished(job_id, JobStatus.COMPLETED)
    assert len(ran) == len(set(ran)) > 1
    with rt.sessions() as s:
        assert sorted(s.scalars(select(Batch.item_count).where(Batch.job_id == job_id))) == sorted(
            s.scalar(select(func.count()).select_from(Item).where(Item.batch_id == b)) for b in ran)
    items = items_by_media(rt, job_id)
    assert items["j13"].status == "already_gone" and items["j13"].vendor_code == "InvalidStream.NotFound"
    assert {m for m, i in items.items() if i.status == "deleted"} == {f"j{i:02}" for i in range(20)} - {"j13"}
    # Each call named only ids of this batch, never more than 20, and every deleted id exactly once.
    sent = [parse_qs(urlsplit(str(c.url)).query)["JobIds"][0].split(",") for c in calls]
    assert all(len(ids) <= 20 for ids in sent) and len(sent) <= 11
    succeeded = [ids for ids in sent if "j13" not in ids]
    assert sorted(i for ids in succeeded for i in ids) == sorted(set(items) - {"j13"})
    assert items["j00"].request_id.startswith("req-")
    assert job_status(rt, job_id) == "completed"
    with rt.sessions() as s:
        verdicts = s.scalars(select(VendorCall.verdict)).all()
    assert verdicts.count("split") >= 1 and len(verdicts) == len(calls)


def test_retryable_answer_reschedules_then_completes(env):
    rt, handlers, calls = env
    job_id, [batch_id] = start_job(rt, [{"action": "huawei.DeleteAssets", "asset_id": f"a{i}"} for i in range(4)])
    handlers.append(lambda r: httpx.Response(503, json={"error_code": "APIGW.0201", "error_msg": "busy", "request_id": "r1"}))
    decision = run_batch(rt, batch_id)
    assert isinstance(decision, RunAgain) and decision.delay == 0.5  # rand=1.0, first backoff = base
    with rt.sessions() as s:
        batch = s.get(Batch, batch_id)
        assert (batch.status, batch.attempts) == ("queued", 1) and batch.next_attempt_at is not None
        batch.next_attempt_at = None  # due now
        s.commit()
    handlers[0] = lambda r: httpx.Response(200, json={"delete_result_array": [
        {"asset_id": a, "status": "DELETED"} for a in parse_qs(urlsplit(str(r.url)).query)["asset_id"]]})
    assert run_batch(rt, batch_id) == Finished(job_id, JobStatus.COMPLETED)
    items = items_by_media(rt, job_id)
    assert {i.status for i in items.values()} == {"deleted"} and {i.attempts for i in items.values()} == {2}
    assert job_status(rt, job_id) == "completed"


def test_items_fail_after_max_attempts_and_job_records_failures(env):
    rt, handlers, _ = env
    job_id, [batch_id] = start_job(rt, [{"action": "huawei.DeleteAssets", "asset_id": "busy"}])
    handlers.append(lambda r: httpx.Response(200, json={"delete_result_array": [{"asset_id": "busy", "status": "FAILED"}]}))
    decisions = []
    for _ in range(3):
        decisions.append(run_batch(rt, batch_id))
        with rt.sessions() as s:
            s.get(Batch, batch_id).next_attempt_at = None
            s.commit()
    assert [type(d) for d in decisions] == [RunAgain, RunAgain, Finished]
    item = items_by_media(rt, job_id)["busy"]
    assert (item.status, item.attempts, item.vendor_code) == ("failed", 3, "FAILED")
    assert "gave up after 3 attempts" in item.vendor_message
    assert job_status(rt, job_id) == "completed_with_failures"


def test_auth_refusal_halts_the_account_for_the_job(env):
    rt, handlers, calls = env
    job_id, batch_ids = start_job(rt, [{"action": "huawei.DeleteAssets", "asset_id": f"a{i}"} for i in range(25)])
    handlers.append(lambda r: httpx.Response(401, json={"error_code": "APIGW.0301", "error_msg": "Incorrect IAM authentication information", "request_id": "r"}))
    assert [run_batch(rt, b) for b in batch_ids] == [Finished(job_id)] * 2 + [Finished(job_id, JobStatus.COMPLETED_WITH_FAILURES)]
    assert len(calls) == 1  # the other batches failed without calling
    items = items_by_media(rt, job_id).values()
    assert {i.status for i in items} == {"failed"}
    assert sorted({i.vendor_code for i in items}) == ["APIGW.0301", "AccountHalted"]
    assert job_status(rt, job_id) == "completed_with_failures"


def test_a_claimed_batch_is_not_run_twice(env):
    rt, handlers, calls = env
    job_id, [batch_id] = start_job(rt, [{"action": "huawei.DeleteAssets", "asset_id": "a"}])

    def reenter(request):
        # While the vendor call is in flight, a second delivery of the same batch arrives.
        assert run_batch(rt, batch_id) == Skipped("not due, held by another worker, or done")
        return httpx.Response(200, json={"delete_result_array": [{"asset_id": "a", "status": "DELETED"}]})

    handlers.append(reenter)
    assert run_batch(rt, batch_id) == Finished(job_id, JobStatus.COMPLETED)
    assert isinstance(run_batch(rt, batch_id), Skipped) and len(calls) == 1


def test_a_far_rate_limit_slot_gives_the_worker_back(env):
    rt, handlers, calls = env
    job_id, [batch_id] = start_job(rt, [{"action": "huawei.DeleteAssets", "asset_id": "a"}])
    # A horizon beyond the inline wait (the default has none): a slot can be reserved, yet too far to sleep for.
    rt.settings = SETTINGS.model_copy(update={"max_reserve_ahead": 1.0})
    far = (SETTINGS.max_inline_wait + 1.0) / 2
    rt.limiter.queue_seconds = far
    decision = run_batch(rt, batch_id)
    # It comes back permit_lead early and sleeps the rest, so a late countdown does not waste the slot.
    assert decision == RunAgain(far - SETTINGS.permit_lead, permit=Permit(1000.0 + far, 0), reason="waiting for its rate-limit slot")
    # What its next message shows, from the claim: re-sending it reads nothing.
    assert decision.ref == BatchRef(batch_id, job_id, "huawei.DeleteAssets", "default", 1)
    assert calls == []
    with rt.sessions() as s:
        assert s.get(Batch, batch_id).status == "queued"
        assert s.get(Batch, batch_id).attempts == 0  # waiting is not an attempt


def test_transport_errors_and_garbage_are_retryable(env):
    rt, handlers, _ = env
    job_id, [batch_id] = start_job(rt, [{"action": "huawei.DeleteAssets", "asset_id": "a"}])

    def boom(request):
        raise httpx.ReadTimeout("timed out", request=request)

    handlers.append(boom)
    assert isinstance(run_batch(rt, batch_id), RunAgain)
    assert items_by_media(rt, job_id)["a"].vendor_code == "ReadTimeout"
    with rt.sessions() as s:
        s.get(Batch, batch_id).next_attempt_at = None
        s.commit()
    handlers[0] = lambda r: httpx.Response(502, text="<html>Bad gateway</html>")
    assert isinstance(run_batch(rt, batch_id), RunAgain)
    assert items_by_media(rt, job_id)["a"].vendor_code == "MalformedResponse"


def test_a_split_survives_a_requeue(env):
    """The culprit search is kept in the database: a rate-limit wait after a split does not start it over."""
    rt, handlers, calls = env
    job_id, [batch_id] = start_job(rt, [{"action": "huawei.DeleteAssets", "asset_id": f"a{i}"} for i in range(10)])
    handlers.append(lambda r: httpx.Response(403, json={"error_code": "VOD.10062", "error_msg": "Media asset or resource does not exist"}))
    first = rt.limiter.reserve

    def slow_after_first(limits, max_ahead, lead=0.0):
        rt.limiter.queue_seconds = 30.0 if rt.limiter.reservations else 0.0
        return first(limits, max_ahead, lead)

    rt.limiter.reserve = slow_after_first
    assert isinstance(run_batch(rt, batch_id), RunAgain)
    [new_batch] = rt.dispatch.__self__
    with rt.sessions() as s:
        sizes = dict(s.execute(select(Batch.id, Batch.item_count)).all())
    assert sizes == {batch_id: 5, new_batch: 5}
    assert len(calls) == 1


def test_a_throttling_answer_slows_the_operations_limit_down(env):
    rt, handlers, _ = env
    _, [batch_id] = start_job(rt, [{"action": "aliyun.DeleteMultipartUpload", "MediaId": "m1", "MediaType": "video"}])
    handlers.append(lambda r: httpx.Response(503, json={"RequestId": "r1", "Code": "Throttling.User", "Message": "Request was denied due to user flow control."}))
    assert isinstance(run_batch(rt, batch_id), RunAgain)
    [(key, epoch)] = rt.limiter.throttled_slots
    assert key.endswith(":DeleteMultipartUpload") and epoch == 0  # the epoch the throttled call's slot was reserved in


def test_a_call_failing_as_a_whole_is_reported_to_the_limiter(env):
    """A 503 is not throttling; the limiter counts it towards a streak (a storm slows the limit down)."""
    rt, handlers, _ = env
    _, [batch_id] = start_job(rt, [{"action": "aliyun.DeleteMultipartUpload", "MediaId": "m1", "MediaType": "video"}])
    handlers.append(lambda r: httpx.Response(503, json={"RequestId": "r1", "Code": "ServiceUnavailable", "Message": "busy"}))
    assert isinstance(run_batch(rt, batch_id), RunAgain)
    [(key, _)] = rt.limiter.unavailable_slots
    assert key.endswith(":DeleteMultipartUpload") and rt.limiter.throttled_slots == [] and rt.limiter.successes == 0


def test_answers_about_items_do_not_slow_the_limit_down(env):
    """Per-item failures and 4xx refusals say nothing about the vendor's load."""
    rt, handlers, _ = env
    _, [batch_id] = start_job(rt, [{"action": "huawei.DeleteAssets", "asset_id": "busy"}])
    handlers.append(lambda r: httpx.Response(200, json={"delete_result_array": [{"asset_id": "busy", "status": "FAILED"}]}))
    assert isinstance(run_batch(rt, batch_id), RunAgain)
    assert rt.limiter.throttled_slots == [] and rt.limiter.unavailable_slots == [] and rt.limiter.successes == 1


def test_a_permit_reserved_before_a_cut_is_not_used(env):
    """A slot spaced for the old rate would crowd the slower one: the batch reserves a new slot."""
    rt, handlers, calls = env
    _, [batch_id] = start_job(rt, [{"action": "huawei.DeleteAssets", "asset_id": "a"}])
    handlers.append(lambda r: httpx.Response(200, json={"delete_result_array": [{"asset_id": "a", "status": "DELETED"}]}))
    rt.limiter.epoch = 3  # three cuts since the permit below was reserved at epoch 2
    assert isinstance(run_batch(rt, batch_id, Permit(1000.0, 2)), Finished)
    assert rt.limiter.reservations == 1 and len(calls) == 1


def test_a_slot_beyond_the_reservation_horizon_is_not_reserved(env):
    """Far out, nothing is reserved: the batch comes back when its turn is within the horizon."""
    rt, handlers, calls = env
    _, [batch_id] = start_job(rt, [{"action": "huawei.DeleteAssets", "asset_id": "a"}])
    rt.limiter.queue_seconds = SETTINGS.max_reserve_ahead + 20.0
    decision = run_batch(rt, batch_id)
    # Back at its place in the limiter's line of refused batches (here: the wait the limiter told).
    assert decision == RunAgain(SETTINGS.max_reserve_ahead + 20.0, permit=None, reason="rate limit queue is long")
    assert calls == []


def test_a_call_waits_for_admission_in_its_slot(env):
    """The window is full (someone reached a slot late): the call sleeps what admission says, then goes."""
    rt, handlers, calls = env
    _, [batch_id] = start_job(rt, [{"action": "huawei.DeleteAssets", "asset_id": "a"}])
    handlers.append(lambda r: httpx.Response(200, json={"delete_result_array": [{"asset_id": "a", "status": "DELETED"}]}))
    slept = []
    rt.sleep = slept.append
    rt.limiter.admission_waits = [0.004, 0.002]
    assert isinstance(run_batch(rt, batch_id), Finished)
    assert slept == [0.004, 0.002] and rt.limiter.admitted == [1000.0] and len(calls) == 1
    assert rt.limiter.reservations == 1  # the same slot, not a new one


def test_a_call_that_leaves_late_after_its_admission_is_restamped(env):
    """Descheduled between admission and send, the call tells the limiter when it really left."""
    rt, handlers, calls = env
    _, [batch_id] = start_job(rt, [{"action": "huawei.DeleteAssets", "asset_id": "a"}])
    handlers.append(lambda r: httpx.Response(200, json={"delete_result_array": [{"asset_id": "a", "status": "DELETED"}]}))
    admit = rt.limiter.admit

    def slow_admit(limits, slot, epoch):
        time.sleep(0.02)  # the answer reaches this process 20 ms after it asked
        return admit(limits, slot, epoch)

    rt.limiter.admit = slow_admit
    assert isinstance(run_batch(rt, batch_id), Finished) and len(calls) == 1
    [(stamp, late)] = rt.limiter.restamped
    assert stamp == "1000.0" and 0.02 <= late < 1.0


def test_a_call_sent_right_after_its_admission_is_not_restamped(env):
    rt, handlers, calls = env
    _, [batch_id] = start_job(rt, [{"action": "huawei.DeleteAssets", "asset_id": "a"}])
    handlers.append(lambda r: httpx.Response(200, json={"delete_result_array": [{"asset_id": "a", "status": "DELETED"}]}))
    assert isinstance(run_batch(rt, batch_id), Finished) and len(calls) == 1
    assert rt.limiter.admitted == [1000.0] and rt.limiter.restamped == []


def test_a_long_admission_wait_gives_the_worker_back_with_the_permit(env):
    rt, handlers, calls = env
    _, [batch_id] = start_job(rt, [{"action": "huawei.DeleteAssets", "asset_id": "a"}])
    rt.limiter.admission_waits = [SETTINGS.max_inline_wait + 2.0]
    decision = run_batch(rt, batch_id)
    assert decision == RunAgain(SETTINGS.max_inline_wait + 2.0 - SETTINGS.permit_lead, permit=Permit(1000.0, 0),
                                reason="waiting for its rate-limit slot")
    assert calls == []
