"""End-of-job callbacks on SQLite with httpx.MockTransport: the signature, delivery, retries, and the
callback URL checks at submission."""

from __future__ import annotations

import hashlib
import hmac
import json

import httpx
import pytest

from models import Job
from models.types import utcnow
from worker import callbacks, jobs
from worker.errors import SubmissionRejected
from worker.outcomes import CallbackState
from worker.settings import CallbackSettings, Settings

SECRET = "cb-SIGNING-secret-71d2"
CONFIG = CallbackSettings(signing_secret=SECRET, max_attempts=3, backoff_base=2, backoff_cap=10)
SETTINGS = Settings(database_url="sqlite://", accounts={"huawei": {"default": {"project_id": "p1", "access_key": "AK", "secret_key": "sk"}}},
                    callbacks={"signing_secret": SECRET})
ITEMS = [{"action": "huawei.DeleteAssets", "asset_id": f"a{i}"} for i in range(3)]


def ended_job(sessions, url="https://receiver.test/hooks/mediapurge?tenant=7", status="completed") -> int:
    job_id = jobs.submit(ITEMS, settings=SETTINGS, sessions=sessions, enqueue=lambda j: None, callback_url=url).job_id
    with sessions() as s:
        job = s.get(Job, job_id)
        job.status, job.finished_at = status, utcnow()
        s.commit()
    return job_id


def receiver(answers):
    got = []

    def handle(request: httpx.Request) -> httpx.Response:
        got.append(request)
        return answers.pop(0) if answers else httpx.Response(204)

    return httpx.Client(transport=httpx.MockTransport(handle)), got


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body():
    body = b'{"event":"job.ended"}'
    header = callbacks.sign(SECRET.encode(), 1_700_000_000, body)

    expected = hmac.new(SECRET.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"
    assert callbacks.verify_signature(SECRET.encode(), header, body, now=1_700_000_100)
    assert not callbacks.verify_signature(SECRET.encode(), header, body + b" ", now=1_700_000_100)  # body changed
    assert not callbacks.verify_signature(b"another secret", header, body, now=1_700_000_100)
    assert not callbacks.verify_signature(SECRET.encode(), header, body, now=1_700_000_000 + 301)  # a replay, too late
    assert not callbacks.verify_signature(SECRET.encode(), "v1=" + expected, body, now=1_700_000_000)  # no timestamp


def test_an_ended_job_is_posted_signed_once_and_recorded_delivered(sessions):
    job_id = ended_job(sessions)
    http, got = receiver([])

    decision = callbacks.deliver(sessions(), http, CONFIG, job_id, now=utcnow(), clock=lambda: 1_800_000_000.0)

    assert decision == callbacks.Delivered(204)
    [request] = got
    assert str(request.url) == "https://receiver.test/hooks/mediapurge?tenant=7"
    signed = hmac.new(SECRET.encode(), b"1800000000." + request.content, hashlib.sha256).hexdigest()
    assert request.headers["Mediapurge-Signature"] == f"t=1800000000,v1={signed}"
    body = json.loads(request.content)
    assert body["event"] == "job.ended"
    assert (body["job"]["job_id"], body["job"]["status"], body["job"]["total"]) == (job_id, "completed", 3)
    with sessions() as s:
        job = s.get(Job, job_id)
        assert (job.callback_state, job.callback_attempts, job.callback_last_error) == ("delivered", 1, None)
        assert job.callback_delivered_at is not None
    # A duplicate message sends nothing more.
    assert callbacks.deliver(sessions(), http, CONFIG, job_id, now=utcnow()) == callbacks.NothingToSend("already delivered")
    assert len(got) == 1


def test_a_failing_receiver_is_retried_with_backoff_then_given_up(sessions):
    job_id = ended_job(sessions, status="cancelled")
    http, got = receiver([httpx.Response(500), httpx.Response(302, headers={"Location": "https://elsewhere.test/"})])

    def refuse(request):
        raise httpx.ConnectError("connection refused", request=request)

    first = callbacks.deliver(sessions(), http, CONFIG, job_id, now=utcnow(), rand=lambda: 1.0)
    second = callbacks.deliver(sessions(), http, CONFIG, job_id, now=utcnow(), rand=lambda: 1.0)
    third = callbacks.deliver(sessions(), httpx.Client(transport=httpx.MockTransport(refuse)), CONFIG, job_id, now=utcnow())

    assert first == callbacks.RetryLater(2.0, "the receiver answered HTTP 500")
    assert second == callbacks.RetryLater(4.0, "the receiver answered HTTP 302")  # redirects are not followed
    assert third == callbacks.GaveUp("ConnectError: connection refused")
    with sessions() as s:
        job = s.get(Job, job_id)
        assert (job.callback_state, job.callback_attempts) == (CallbackState.FAILED.value, 3)
    assert len(got) == 2


def test_jobs_without_a_callback_or_not_ended_send_nothing(sessions):
    http, got = receiver([])
    plain = jobs.submit(ITEMS, settings=SETTINGS, sessions=sessions, enqueue=lambda j: None).job_id
    running = jobs.submit(ITEMS[:1], settings=SETTINGS, sessions=sessions, enqueue=lambda j: None, callback_url="http://r.test/").job_id

    assert callbacks.deliver(sessions(), http, CONFIG, plain, now=utcnow()) == callbacks.NothingToSend("the job has no callback URL")
    assert callbacks.deliver(sessions(), http, CONFIG, running, now=utcnow()) == callbacks.NothingToSend("the job is submitted, not ended")
    assert got == []


def test_a_worker_without_the_signing_secret_gives_up_at_once_and_says_why(sessions):
    job_id = ended_job(sessions)
    http, got = receiver([])

    decision = callbacks.deliver(sessions(), http, CallbackSettings(), job_id, now=utcnow())

    assert decision == callbacks.GaveUp("callbacks.signing_secret is not set on the worker")
    assert got == []


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://receiver.test/x", "must be an http:// or https:// URL"),
        ("receiver.test/x", "must be an http:// or https:// URL"),
        ("https:///nohost", "must name a host"),
        ("https://user:pw@receiver.test/", "must not carry credentials"),
        ("https://receiver.test/a b", "must not contain whitespace"),
        ("https://receiver.test:99999999/", "is not a valid URL"),
        ("https://receiver.test/" + "x" * 2000, "must be 1 to 2000 characters"),
    ],
)
def test_a_bad_callback_url_refuses_the_submission_naming_the_field(sessions, url, reason):
    with pytest.raises(SubmissionRejected) as refused:
        jobs.submit(ITEMS, settings=SETTINGS, sessions=sessions, enqueue=lambda j: None, callback_url=url)

    [problem] = refused.value.problems
    assert problem.field == "callback_url" and reason in problem.reason
    with sessions() as s:
        assert s.query(Job).count() == 0


def test_a_callback_url_is_refused_when_the_server_cannot_sign(sessions):
    unsigned = SETTINGS.model_copy(update={"callbacks": CallbackSettings()})
    with pytest.raises(SubmissionRejected, match="callbacks.signing_secret"):
        jobs.submit(ITEMS, settings=unsigned, sessions=sessions, enqueue=lambda j: None, callback_url="https://r.test/")


def test_the_signing_secret_can_come_from_a_file(tmp_path):
    path = tmp_path / "callback_secret"
    path.write_text(SECRET + "\n")

    config = CallbackSettings(signing_secret_file=path)

    assert config.signing_secret.get_secret_value() == SECRET
    assert SECRET not in repr(config)
