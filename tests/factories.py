"""factory_boy factories for the customer memory."""

import datetime as dt

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from crm import models


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@goldfish.example")
    password = factory.django.Password("pw-for-tests")

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        if create and extracted:
            self.groups.add(Group.objects.get(name=extracted))


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Customer

    display_name = factory.Sequence(lambda n: f"Customer Number{n}")
    preferred_name = ""


class IdentityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Identity

    customer = factory.SubFactory(CustomerFactory)
    kind = "phone"
    value = factory.Sequence(lambda n: f"+1212555{n % 10000:04d}")
    normalized = factory.LazyAttribute(lambda i: i.value)


def reason(code: str = "billing") -> models.ContactReason:
    return models.ContactReason.objects.get(code=code)


class InteractionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Interaction

    customer = factory.SubFactory(CustomerFactory)
    channel = "phone"
    started_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(days=1))
    source = "test"


class CaseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Case

    customer = factory.SubFactory(CustomerFactory)
    subject = "Broadband keeps dropping"
    opened_at = factory.LazyFunction(timezone.now)


class FeedbackFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Feedback

    received_at = factory.LazyFunction(timezone.now)
