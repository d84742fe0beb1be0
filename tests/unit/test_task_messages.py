"""What a task message shows Flower: its argsrepr names the work, and a retry keeps it."""

from __future__ import annotations

from celery.app.task import Context

from tasks.jobs import delete_batch, plan_job
from worker.refs import BatchRef, plan_argsrepr, slot_kwargsrepr
from worker.retry import Permit


def test_a_batch_ref_reads_as_job_batch_action_account_and_item_count():
    ref = BatchRef(id=345, job_id=12, action="zego.DeleteMedia", account="eu-app", item_count=100)
    assert ref.argsrepr == "job=12 batch=345 zego.DeleteMedia account=eu-app items=100"
    assert plan_argsrepr(12) == "job=12"
    assert slot_kwargsrepr(None) is None
    assert slot_kwargsrepr(Permit(1732258123.4567, 2)) == "permit_slot=1732258123.457 permit_epoch=2"


def request(args, kwargs, argsrepr, kwargsrepr):
    """A task request as the worker builds it from a message's headers."""
    return Context(id="t-1", args=args, kwargs=kwargs, argsrepr=argsrepr, kwargsrepr=kwargsrepr, delivery_info={}, retries=0)


def test_a_retry_keeps_the_text_flower_shows():
    sent = request([345], {"permit_slot": 17.5, "permit_epoch": 0}, "job=12 batch=345 zego.DeleteMedia account=default items=100", "permit_slot=17.500 permit_epoch=0")
    again = delete_batch.signature_from_request(sent, countdown=3)
    assert list(again.args) == [345]
    assert again.options["argsrepr"] == "job=12 batch=345 zego.DeleteMedia account=default items=100"
    assert again.options["kwargsrepr"] == "permit_slot=17.500 permit_epoch=0"
    assert plan_job.signature_from_request(request([12], {}, "job=12", "{}")).options["argsrepr"] == "job=12"


def test_a_retry_with_other_arguments_gets_their_own_repr():
    sent = request([345], {}, "job=12 batch=345 zego.DeleteMedia account=default items=100", "{}")
    other = delete_batch.signature_from_request(sent, args=(346,))
    assert "argsrepr" not in other.options and "kwargsrepr" not in other.options
