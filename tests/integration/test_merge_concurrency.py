"""Two supervisors merge the same pair at the same moment, in opposite directions."""

import threading

import pytest
from django.db import connections

from crm import models, privacy
from crm.exceptions import DomainError
from tests.factories import CustomerFactory, InteractionFactory, UserFactory


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_opposite_merges_of_one_pair_at_once_make_exactly_one_merge():
    # given
    sam = UserFactory(username="sam")
    a, b = CustomerFactory(), CustomerFactory()
    for customer in (a, b):
        InteractionFactory.create_batch(3, customer=customer)
    start = threading.Barrier(2)
    outcomes: list = []

    def merge(survivor, duplicate):
        try:
            start.wait()
            outcomes.append(privacy.customer_merge(actor=sam, survivor=survivor, duplicate_id=duplicate.pk))
        except DomainError as exc:
            outcomes.append(exc)
        finally:
            connections.close_all()

    # when
    threads = [threading.Thread(target=merge, args=pair) for pair in ((a, b), (b, a))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)

    # then one merge happened, the other was refused, and no contact was lost
    records = [o for o in outcomes if isinstance(o, models.MergeRecord)]
    refusals = [o for o in outcomes if isinstance(o, DomainError)]
    assert len(records) == 1 and len(refusals) == 1, outcomes
    survivor = records[0].survivor
    assert models.Interaction.objects.filter(customer=survivor).count() == 6
    assert models.MergeRecord.objects.count() == 1
