"""A worker SIGKILLed while it sends e-mails to a slow mail server: every e-mail arrives, once.

Issue 11 measured on the old code: 6 of 50 e-mails lost (marked sent before they
were sent). Here the worker sends by real SMTP to a server that takes 0.5 s per
message; the whole worker (main process, pool, beat) is killed while a message is
on the wire; a second worker starts. The server counts what it accepted by
Message-ID.
"""

from __future__ import annotations

import pytest

from bench.faultkit import Worker, broker_at, wait_until
from crm import emails
from crm import feedback as workflows
from crm.models import EmailStatus, Feedback, FollowUp, FollowUpKind, OutboundEmail, Recognition
from tests.factories import InteractionFactory
from tests.integration.faults.conftest import customer

pytestmark = [pytest.mark.worker, pytest.mark.postgres, pytest.mark.usefixtures("reinstall_migration_data")]

FEEDBACK = 6  # praise for Jane from customers who agreed to e-mail: 3 e-mails each (them, Jane, Sofia)


@pytest.mark.parametrize("smtp", [0.5], indirect=True)
def test_a_worker_killed_mid_send_loses_no_email_and_sends_none_twice(floor, smtp, redis, worker_env, tmp_path):
    first = Worker(worker_env, tmp_path / "first.log", concurrency=1).start()
    second = Worker(worker_env, tmp_path / "second.log", concurrency=2)
    try:
        # given six customers praise Jane
        with broker_at(redis.url()):
            for n in range(FEEDBACK):
                contact = InteractionFactory(customer=customer(n), agent=floor["jane"])
                workflows.feedback_submit(interaction_id=contact.pk, rating=5, text="Jane was great")

        # when the worker is killed with an e-mail on the wire, a few already delivered
        wait_until(lambda: len(smtp.received()) >= 3 and smtp.mid_delay(), "an e-mail in flight", 40, 0.01)
        first.kill()
        delivered_before_the_kill = len(smtp.received())
        # and a second worker starts
        second.start()

        # then every e-mail arrives
        expected = 3 * FEEDBACK
        wait_until(
            lambda: (
                OutboundEmail.objects.filter(status=EmailStatus.SENT).count() == expected
                and len(smtp.received()) >= expected
            ),
            "every e-mail to be sent",
            45,
        )
    finally:
        first.kill()
        second.stop()

    rows = list(OutboundEmail.objects.all())
    assert delivered_before_the_kill < expected
    # exactly once each, counted by Message-ID at the server
    assert smtp.message_ids() == {emails.message_id(row): 1 for row in rows}
    assert smtp.duplicates() == {}
    # the one on the wire was claimed by the dead worker and sent again after its lease expired
    assert max(row.attempts for row in rows) == 2
    assert Feedback.objects.filter(status="processed").count() == FEEDBACK
    assert Recognition.objects.count() == FEEDBACK
    assert set(FollowUp.objects.filter(kind=FollowUpKind.THANK_YOU_EMAIL).values_list("status", flat=True)) == {"done"}
